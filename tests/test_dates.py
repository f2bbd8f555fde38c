"""course_utils.lessons.nb10_seq2seq.dates: the date normalisation data of notebooks 10 and 11 is what its docstrings say."""
import datetime as dt

import numpy as np
import pytest

from course_utils.lessons.nb10_seq2seq.dates import (
    FIRST_DAY, FORMATS, LAST_DAY, MONTHS, WEEKDAYS, DateData, Vocab, all_days, format_date, ordinal, pad_batch,
)

MARCH_3_1998 = {
    "d/m/yy": "3/3/98", "dd/mm/yy": "03/03/98", "dd.mm.yyyy": "03.03.1998", "d/m/yyyy": "3/3/1998",
    "yyyymmdd": "19980303", "iso": "1998-03-03", "d-Mon-yy": "3-Mar-98", "d Mon yyyy": "3 Mar 1998",
    "DD MON YYYY": "03 MAR 1998", "d Month yyyy": "3 March 1998", "Month d, yyyy": "March 3, 1998",
    "month dth, yyyy": "march 3rd, 1998", "Wkd d Month yyyy": "Tue 3 March 1998",
    "Weekday, Month d, yyyy": "Tuesday, March 3, 1998", "the dth of Month yyyy": "the 3rd of March 1998",
    "Weekday, the dth of Month, yyyy": "Tuesday, the 3rd of March, 1998",
    "on weekday the dth day of month in the year yyyy": "on tuesday, the 3rd day of march in the year 1998",
}


def test_every_format_writes_3_march_1998_as_documented():
    assert set(FORMATS) == set(MARCH_3_1998)
    for fmt, text in MARCH_3_1998.items():
        assert format_date(dt.date(1998, 3, 3), fmt) == text


@pytest.mark.parametrize("n, text", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
                                     (13, "13th"), (21, "21st"), (22, "22nd"), (23, "23rd"), (30, "30th"), (31, "31st")])
def test_ordinal(n, text):
    assert ordinal(n) == text


def test_names_are_english_and_weekdays_follow_the_calendar():
    assert MONTHS[0] == "January" and MONTHS[11] == "December" and len(MONTHS) == 12
    assert WEEKDAYS[dt.date(2000, 1, 1).weekday()] == "Saturday"  # a known Saturday
    assert format_date(dt.date(2049, 12, 31), "Wkd d Month yyyy") == "Fri 31 December 2049"
    assert format_date(dt.date(2000, 2, 29), "d/m/yy") == "29/2/00"  # a leap day, and a two-digit year 00


def test_no_input_is_ambiguous():
    """Every string, in any format, is the writing of one day only: a perfect model is possible."""
    days = all_days()
    assert days[0] == FIRST_DAY and days[-1] == LAST_DAY and len(days) == 36525
    seen: dict[str, dt.date] = {}
    for day in days:
        for fmt in FORMATS:
            text = format_date(day, fmt)
            assert seen.setdefault(text, day) == day, (text, seen[text], day)


def test_input_lengths_span_short_and_long():
    lengths = [len(format_date(day, fmt)) for day in all_days()[::97] for fmt in FORMATS]
    assert min(lengths) == 6 and max(lengths) >= 55


def test_vocab_has_pad_start_end_first_and_decodes_up_to_end():
    v = Vocab("0123456789-")
    assert v.tokens[:3] == ["<pad>", "<start>", "<end>"] and (v.pad_id, v.start_id, v.end_id) == (0, 1, 2)
    assert len(v) == 14
    ids = v.encode("1998-03-03", start=True, end=True)
    assert ids.dtype == np.int64 and ids[0] == 1 and ids[-1] == 2 and len(ids) == 12
    assert v.decode(ids) == "1998-03-03"
    assert v.decode([*v.encode("12"), 2, *v.encode("34")]) == "12"  # stops at <end>
    assert v.decode([0, 1, *v.encode("7"), 0]) == "7"  # skips <pad> and <start>


def test_pad_batch_pads_at_the_end():
    ids, lengths = pad_batch([np.array([5, 6, 7]), np.array([8])], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    assert ids.dtype == lengths.dtype == np.int64


def test_training_and_heldout_days_split_every_day_once_and_depend_on_the_seed():
    data = DateData(seed=0)
    train, heldout = set(data.train_days), set(data.heldout_days)
    assert not train & heldout and len(train | heldout) == 36525
    assert len(heldout) == round(0.1 * 36525)
    assert DateData(seed=0).heldout_days == data.heldout_days
    assert DateData(seed=1).heldout_days != data.heldout_days


def test_pairs_are_deterministic_and_come_from_their_split():
    data = DateData(seed=0)
    a = data.pairs(200, np.random.default_rng(5), split="heldout")
    assert a == data.pairs(200, np.random.default_rng(5), split="heldout")
    heldout = {d.isoformat() for d in data.heldout_days}
    assert all(target in heldout for _, target in a)
    train = data.pairs(200, np.random.default_rng(5))
    assert not {t for _, t in train} & heldout
    assert len({s for s, _ in train}) > 150  # many formats and days
    one_format = data.pairs(20, np.random.default_rng(0), fmt="yyyymmdd")
    assert all(s == t.replace("-", "") for s, t in one_format)


def test_every_character_of_every_format_is_in_the_source_vocabulary():
    data = DateData(seed=0)
    for day in all_days()[::13]:
        for fmt in FORMATS:
            text = format_date(day, fmt)
            assert data.src_vocab.decode(data.src_vocab.encode(text)) == text


def test_batch_holds_padded_sources_and_the_target_shifted_by_one():
    data = DateData(seed=0)
    pairs = [("3/3/98", "1998-03-03"), ("Tuesday, March 3, 1998", "1998-03-03")]
    b = data.batch(pairs)
    assert b.src.shape == (2, 22) and b.src_lengths.tolist() == [6, 22]
    assert b.src_mask.tolist()[0] == [True] * 6 + [False] * 16 and b.src_mask[1].all()
    assert b.src[0, 6:].eq(0).all()
    assert b.tgt_in.shape == b.tgt_out.shape == (2, 11)
    assert b.tgt_in[0, 0] == 1 and b.tgt_out[0, -1] == 2 and (b.tgt_in[:, 1:] == b.tgt_out[:, :-1]).all()
    assert data.tgt_vocab.decode(b.tgt_out[0].numpy()) == "1998-03-03"
    assert data.src_vocab.decode(b.src[0].numpy()) == "3/3/98"
    assert b.sources == ["3/3/98", "Tuesday, March 3, 1998"] and b.targets == ["1998-03-03"] * 2
    assert b.src_lengths.device.type == "cpu"


def test_batches_draw_fresh_reproducible_training_batches():
    data = DateData(seed=0)
    first, again = data.batches(8, seed=3), data.batches(8, seed=3)
    b1, b2 = first(), first()
    assert b1.sources != b2.sources
    assert again().sources == b1.sources


def test_a_batch_holds_the_whole_target_once_from_start_to_end():
    data = DateData(seed=0)
    b = data.batch([("3 March 1998", "1998-03-03"), ("1/2/03", "2003-02-01")])
    assert b.tgt.shape == (2, 12)
    assert (b.tgt[:, :-1] == b.tgt_in).all() and (b.tgt[:, 1:] == b.tgt_out).all()
