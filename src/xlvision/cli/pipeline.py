"""xlv-pipeline: pretrain → fine-tune per target → report, e.g. `pipeline.targets=[kn,th]`."""

from xlvision.cli.app import console_main

main = console_main(
    "xlvision.stages.pipeline:pipeline", "pipeline", "xlv-pipeline", summary=__doc__
)

if __name__ == "__main__":
    main()
