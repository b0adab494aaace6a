"""xlv-train: train and test one model, e.g. `xlv-train language=[en,kn] model=resnet18`."""

from xlvision.cli.app import console_main

main = console_main(
    "xlvision.stages.train:train", config_name="config", prog="xlv-train", summary=__doc__
)

if __name__ == "__main__":
    main()
