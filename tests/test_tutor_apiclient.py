import numpy as np

from tutor.apiclient import wrong_response


def test_a_wrong_fraction_is_never_the_key_in_another_form():
    # 4/5 = 8/10 = 12/15 = 16/20: the draw range of the wrong answers holds 8/10 and 12/15.
    rng = np.random.default_rng(0)
    answers = {wrong_response({"type": "fraction", "value": "4/5"}, rng) for _ in range(2000)}
    assert "8/10" not in answers
    assert "12/15" not in answers
    assert len(answers) > 50  # still a spread of wrong answers


def test_wrong_numbers_and_choices_differ_from_the_key():
    rng = np.random.default_rng(1)
    for _ in range(200):
        assert wrong_response({"type": "number", "value": "7"}, rng) != "7"
        assert wrong_response({"type": "choice", "value": "B", "choices": ["x", "y", "z"]}, rng) in {"A", "C"}
