"""course_utils.lessons.nb10_seq2seq.translation: the sentence-pair loader, vocabulary, data and BLEU do what their docstrings say,
on a tiny file in the layout of the Tatoeba-derived files (manythings.org/anki) that the tests write."""
import numpy as np
import pytest
import torch

from course_utils import reference as ref
from course_utils.lessons.nb10_seq2seq.seq2seq import Seq2Seq, train
from course_utils.lessons.nb10_seq2seq.translation import TranslationData, WordVocab, bleu, normalize, read_pairs, tokenize

ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)"
LINES = [
    f"Go.\tVa !\t{ATTRIBUTION}",
    "Hi.\tSalut !",  # no attribution: two fields are enough
    f"Run!\tCours\u202f!\t{ATTRIBUTION}",  # a narrow no-break space before "!", as in the real file
    "",  # blank lines are skipped
    f"I see the cat.\tJe vois le chat.\t{ATTRIBUTION}",
    f"I see the dog.\tJe vois le chien.\t{ATTRIBUTION}",
    f"Wait, he is here!\tAttends, il est là\xa0!\t{ATTRIBUTION}",
]


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_normalize_lowercases_and_splits_punctuation_off_keeping_accents():
    assert normalize("Attends, il est là\xa0!") == "attends , il est là !"
    assert normalize("  Cours\u202f!  ") == "cours !"
    assert normalize("«\u00a0Oui\u00a0», dit-il.") == "« oui » , dit-il ."
    assert tokenize("Va, vite !") == ["va", ",", "vite", "!"]


def test_read_pairs_reads_source_and_target_and_ignores_the_attribution(tiny_file):
    pairs = read_pairs(tiny_file)
    assert pairs == [("go .", "va !"), ("hi .", "salut !"), ("run !", "cours !"),
                     ("i see the cat .", "je vois le chat ."), ("i see the dog .", "je vois le chien ."),
                     ("wait , he is here !", "attends , il est là !")]


def test_read_pairs_options(tiny_file):
    assert read_pairs(tiny_file, max_pairs=2) == [("go .", "va !"), ("hi .", "salut !")]
    assert read_pairs(tiny_file, reverse=True)[0] == ("va !", "go .")
    assert [s for s, _ in read_pairs(tiny_file, max_words=3)] == ["go .", "hi .", "run !"]


def test_a_line_without_a_tab_is_refused_with_its_number(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Go.\tVa !\nHello there\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_pairs(path)


def test_word_vocab_special_ids_unknown_words_and_round_trip():
    v = WordVocab(["le chat", "le chien", "le chat"], min_freq=1)
    assert v.tokens[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert (v.pad_id, v.start_id, v.end_id, v.unk_id) == (0, 1, 2, 3)
    ids = v.encode("le chat noir", start=True, end=True)
    assert ids.dtype == np.int64 and ids.tolist() == [1, v.index["le"], v.index["chat"], 3, 2]
    assert v.decode([*v.encode("le chien"), 2, v.index["chat"]]) == "le chien"
    rare = WordVocab(["le chat", "le chien", "le chat"], min_freq=2)
    assert "chien" not in rare.tokens and rare.encode("chien").tolist() == [3]


def test_translation_data_has_date_datas_interface_and_a_disjoint_split(tiny_file):
    pairs = read_pairs(tiny_file)
    data = TranslationData(pairs, seed=0, heldout_fraction=1 / 3)
    assert len(data.heldout) == 2 and len(data.train) == 4
    assert set(data.heldout).isdisjoint(data.train) and set(data.heldout) | set(data.train) == set(pairs)
    assert all(w in data.src_vocab.index for s, _ in data.train for w in s.split())
    batch = data.batch(data.pairs(3, np.random.default_rng(0)))
    N, S = batch.src.shape
    assert N == 3 and batch.src_lengths.tolist() == [len(s.split()) for s in batch.sources]
    assert S == max(batch.src_lengths.tolist())
    assert batch.tgt[:, 0].tolist() == [1, 1, 1]
    for n, target in enumerate(batch.targets):
        L = len(target.split())
        assert batch.tgt_out[n, L].item() == 2 and data.tgt_vocab.decode(batch.tgt_out[n]) == target
    assert data.pairs(5, np.random.default_rng(1), split="heldout")[0] in data.heldout
    with pytest.raises(ValueError, match="no sentence pairs"):
        TranslationData([])


def test_the_course_models_train_on_translation_data(tiny_file):
    """Notebook 10's encoder and decoder, trained by seq2seq.train, fit the tiny file's training pairs."""
    data = TranslationData(read_pairs(tiny_file), seed=0, heldout_fraction=0.0)
    torch.manual_seed(0)
    model = Seq2Seq(ref.Encoder(len(data.src_vocab), 8, 32), ref.Decoder(len(data.tgt_vocab), 8, 32))
    history = train(model, data.batches(6, seed=0), steps=150, lr=1e-2, progress=False)
    assert history["loss"][-10:].mean() < 0.1 * history["loss"][0]
    batch = data.batch(data.train)
    rows = ref.greedy_decode(model.encoder, model.decoder, batch.src, batch.src_lengths, 1, 2, max_len=8)
    predictions = [data.tgt_vocab.decode(row) for row in rows]
    assert sum(p == t for p, t in zip(predictions, batch.targets)) >= 5  # of 6, after 150 steps
    assert bleu(predictions, batch.targets) > 75


def test_bleu_is_sacrebleus_corpus_bleu():
    assert bleu(["je vois le chat ."], ["je vois le chat ."]) == pytest.approx(100.0)
    assert bleu(["a b c d"], ["e f g h"]) == pytest.approx(0.0)
    assert bleu(["le chat est ici ."], ["le chat est là ."]) == pytest.approx(42.7287, abs=1e-3)
    # ISO dates have no words: on characters one wrong digit costs a little, not the whole date
    assert 80 < bleu(["1998-03-04"], ["1998-03-03"], tokenize="char") < 100
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        bleu(["a", "b"], ["a"])
