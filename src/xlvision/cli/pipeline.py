"""xlv-pipeline: pretrain → fine-tune per target → report, e.g. `pipeline.targets=[kn,th]`."""

from xlvision.cli.app import Command

main = Command("xlv-pipeline", "pipeline", __doc__, stage="xlvision.stages.pipeline:pipeline")

if __name__ == "__main__":
    main()
