"""xlv-finetune: `xlv-finetune base=<checkpoint> language=kn finetune=linear_probe`."""

from xlvision.cli.app import console_main

main = console_main(
    "xlvision.stages.finetune:finetune",
    "config",
    "xlv-finetune",
    defaults={"stage": "finetune", "finetune": "full"},
    summary=__doc__,
)

if __name__ == "__main__":
    main()
