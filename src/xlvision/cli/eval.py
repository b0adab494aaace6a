"""xlv-eval: test a bundle per language, e.g. `xlv-eval bundle=model.safetensors language=[kn,ar]`."""

from xlvision.cli.app import Command

main = Command("xlv-eval", "eval", __doc__, stage="xlvision.stages.evaluate:evaluate")

if __name__ == "__main__":
    main()
