"""xlv-eval: test a bundle per language, e.g. `xlv-eval bundle=model.safetensors language=[kn,ar]`."""

from xlvision.bundle import BundleError
from xlvision.cli.app import console_main
from xlvision.config import ConfigError
from xlvision.stages.evaluate import evaluate

main = console_main(evaluate, "eval", "xlv-eval", user_errors=(BundleError, ConfigError))

if __name__ == "__main__":
    main()
