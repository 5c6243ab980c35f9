import os
import sys

# make the helper module importable whatever pytest's import mode
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
