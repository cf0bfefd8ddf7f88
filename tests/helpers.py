"Small synthetic data shared by the tests (no download needed); import with `from helpers import ...`."
import numpy as np
from PIL import Image

def u8(*shape, seed=0):
    "Random bytes of `shape`, the same for the same `seed`."
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)

def image_dd(n_train=12, n_valid=5, size=4):
    "A `DatasetDict` shaped like Fashion-MNIST's (an `image` and a `label` feature), of `size`×`size` random images."
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as HFImage
    feats = Features({'image': HFImage(), 'label': ClassLabel(names=['a', 'b', 'c'])})
    def split(n, seed):
        return Dataset.from_dict({'image': [Image.fromarray(u8(size, size, seed=seed+i)) for i in range(n)],
                                  'label': [i%3 for i in range(n)]}, features=feats)
    return DatasetDict(train=split(n_train, 0), test=split(n_valid, 1000))
