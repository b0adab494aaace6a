"""xlv-train: train and test one model, e.g. `xlv-train language=[en,kn] model=resnet18`."""

from xlvision.cli.app import Command

main = Command("xlv-train", "config", __doc__, stage="xlvision.stages.train:train")

if __name__ == "__main__":
    main()
