"""Datasets (each returns dicts of named tensors) and the loader that feeds the trainer.

Every dataset has ``__len__``, ``get(index, rng) -> {"image": (C,H,W) in [-1,1], "label"?: long}``
and ``num_classes`` (0 when unlabelled). Importing this package registers the built-in datasets
(``builders.py``), each with its typed config (``configs.py``).
"""

from ganforge.data.builders import build_dataset, class_names, data_config
from ganforge.data.celeba import CelebADataset
from ganforge.data.cifar import CifarDataset
from ganforge.data.hdf5 import HDF5Dataset
from ganforge.data.image_folder import ImageFolderDataset
from ganforge.data.images import DataError
from ganforge.data.loader import BatchStream, auto_num_workers, build_loader
from ganforge.data.shapes import ShapesDataset
from ganforge.data.writer import write_dataset

__all__ = ["DataError", "build_dataset", "class_names", "data_config", "build_loader", "BatchStream", "auto_num_workers",
           "write_dataset", "ShapesDataset", "ImageFolderDataset", "CifarDataset", "HDF5Dataset", "CelebADataset"]
