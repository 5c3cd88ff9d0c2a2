"""Datasets, splits and (for incremental mode) class streams - the data the kernel trains on."""

from automl.data.datasets import (DEFAULT_DATASET, Dataset, Split, batches_per_epoch, dataset_names,
                                  load_dataset, load_image_folder, load_mnist5k, load_torchvision,
                                  stratified_split)

__all__ = ["DEFAULT_DATASET", "Dataset", "Split", "batches_per_epoch", "dataset_names", "load_dataset",
           "load_image_folder", "load_mnist5k", "load_torchvision", "stratified_split"]
