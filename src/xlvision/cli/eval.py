"""xlv-eval: test a bundle per language, e.g. `xlv-eval bundle=model.safetensors language=[kn,ar]`."""

from xlvision.cli.app import console_main
from xlvision.config import ConfigError

main = console_main(
    "xlvision.stages.evaluate:evaluate",
    "eval",
    "xlv-eval",
    user_errors=("xlvision.bundle:BundleError", ConfigError),
)

if __name__ == "__main__":
    main()
