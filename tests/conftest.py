"Test setup: offline, headless, with the notebooks' data seeded from a folder of pre-downloaded files."
import os, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
os.environ.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', MPLBACKEND='Agg')
sys.path.insert(0, str(root/'tools'))
from seed_data import seed

seed()
