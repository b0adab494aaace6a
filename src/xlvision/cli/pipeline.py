"""xlv-pipeline: pretrain → fine-tune per target → report, e.g. `pipeline.targets=[kn,th]`."""

from xlvision.cli.app import console_main
from xlvision.stages.pipeline import pipeline

main = console_main(pipeline, "pipeline", "xlv-pipeline")

if __name__ == "__main__":
    main()
