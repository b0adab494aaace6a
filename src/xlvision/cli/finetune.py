"""xlv-finetune: `xlv-finetune base=<checkpoint> language=kn finetune=linear_probe`."""

from xlvision.cli.app import Command

main = Command(
    "xlv-finetune",
    "config",
    __doc__,
    stage="xlvision.stages.finetune:finetune",
    defaults={"stage": "finetune", "finetune": "full"},
)

if __name__ == "__main__":
    main()
