"""The data sets the CLI reads (Fashion-MNIST, CIFAR-10/100 binaries, image
folders, the synthetic task), as uint8 images and int64 labels."""

from . import _C


def names():
    return _C.dataset_names()


def load(name, dir="", synthetic_train=0, synthetic_test=0):
    """{'train': (images, labels), 'test': (images, labels), 'num_classes',
    'class_names', 'mean', 'std'}: images uint8 [N, C, H, W], the
    normalisation computed from the training images as `was train` does."""
    return _C.load_dataset(name, str(dir), synthetic_train, synthetic_test)


def normalize(images, mean, std, device="cpu"):
    """uint8 images as float network input: (x / 255 - mean) / std per channel."""
    return _C.normalize(images, list(mean), list(std), str(device))
