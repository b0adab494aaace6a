"""xlv-eval: test a bundle per language, e.g. `xlv-eval bundle=model.safetensors language=[kn,ar]`."""

from xlvision.cli.app import console_main

main = console_main("xlvision.stages.evaluate:evaluate", "eval", "xlv-eval", summary=__doc__)

if __name__ == "__main__":
    main()
