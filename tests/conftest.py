"Test setup: offline, headless, with the notebooks' data seeded from a folder of pre-downloaded files."
import os, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
os.environ.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', MPLBACKEND='Agg')
sys.path.insert(0, str(root/'tools'))
from seed_data import seed

seed()

# For the browser tests: Debian's Chromium, started so that it never calls home (offline, that floods
# refused connections; Playwright adds --headless), and the folder their screenshots go to.
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
ARTIFACTS = Path(os.environ.get('ARTIFACTS', root/'artifacts'))
