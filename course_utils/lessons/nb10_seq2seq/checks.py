"""Checks of notebook 10: the encoder over padded sequences, the decoder, and beam search."""
from __future__ import annotations

import numpy as np

from course_utils.checking.conventions import run_plan
from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise_torch import (
    GreedyOutputExercise, TorchExercise, padded_token_loss, teacher_forcing_mistakes, teacher_forcing_split,
)


def _seed(rng, seed):
    return np.random.default_rng(int(rng.integers(0, 2**31)) if seed is None else seed)


def _gru_state(g, prefix, E, H):
    """Weights of a one-layer nn.GRU named as in a module whose GRU is ``prefix``."""
    return {f"{prefix}.weight_ih_l0": g.standard_normal((3 * H, E)) / np.sqrt(E),
            f"{prefix}.weight_hh_l0": g.standard_normal((3 * H, H)) / np.sqrt(H),
            f"{prefix}.bias_ih_l0": g.standard_normal(3 * H) * 0.5,
            f"{prefix}.bias_hh_l0": g.standard_normal(3 * H) * 0.5}


def _padded_tokens(g, lengths, S, V, pad_id=0):
    """int (N, S): random ids in 1..V-1 (never the padding id 0), pad_id after each length."""
    tokens = np.full((len(lengths), S), pad_id, dtype=np.int64)
    for n, L in enumerate(lengths):
        tokens[n, :L] = g.integers(1, V, size=L)
    return tokens


def _module(case, cls_name):
    """The reference module of a case, with the case's weights, in float64 and eval mode."""
    import torch

    from course_utils import reference

    plan = case.options["plan"]
    module = getattr(reference, cls_name)(*plan["init"].values()).to(torch.float64)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in plan["state"].items()})
    return module.eval()


def _tensors(case):
    import torch

    return {k: torch.from_numpy(np.array(v)) for k, v in case.args.items()}


def _arrays(**tensors):
    return {k: v.detach().numpy() for k, v in tensors.items()}


def _learner_module(cls_name, forward):
    """A learner's module with a mistake in its forward pass: the notebook's ``cls_name`` as handed out
    (the reference's ``__init__``, so its parameters load), with ``forward`` as its forward."""
    def build(*sizes):
        from course_utils import reference

        return type(cls_name, (getattr(reference, cls_name),), {"forward": forward})(*sizes)
    build.__name__ = forward.__name__
    return build


def _run_through(exercise, learner):
    """The model of a mistake written as ``learner``, a wrong function as a learner writes it: its outputs
    through the check's own convention. The model keeps it as ``implementation``, for the catalogue."""
    def outputs(case):
        ex = globals()[exercise]  # defined after its catalogue
        return run_plan((learner,), *ex.plan(case))[0]
    outputs.implementation = learner
    return outputs


def _implemented(mistakes):
    """Catalogue entries with their wrong implementation: where none is given, the learner function that
    the entry's model runs (see _run_through), so that tests/proofs.py runs it through the check."""
    return [m if m.implementation is not None or not hasattr(m.outputs, "implementation")
            else Mistake(m.hint, m.outputs, implementation=m.outputs.implementation) for m in mistakes]


# --- 10.1: Encoder ----------------------------------------------------------------------------

ENCODER_PARAMS = ("embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0")


def _encoder_case(label, src, lengths, state, sizes, g):
    V, E, H = sizes
    N, S = src.shape
    return Case(label, {"src": src, "lengths": np.asarray(lengths, dtype=np.int64)}, options={"plan": {
        "init": {"vocab_size": V, "embed_size": E, "hidden_size": H}, "state": state,
        "returns": ("outputs", "final"), "name": "Encoder",
        "douts": {"outputs": g.standard_normal((N, S, H)), "final": g.standard_normal((N, H))}, "grad_wrt": ()}})


def _encoder_cases(rng):
    cases = []
    g = np.random.default_rng(0)
    sizes = V, E, H = 9, 4, 5
    lengths, S = np.array([6, 3, 1, 4]), 6
    state = {"embedding.weight": g.standard_normal((V, E)), **_gru_state(g, "rnn", E, H)}
    src = _padded_tokens(g, lengths, S, V)
    cases.append(_encoder_case(f"fixed weights and tokens, lengths {lengths.tolist()} (not sorted), S={S}",
                               src, lengths, state, sizes, g))
    noisy = src.copy()
    noisy[src == 0] = g.integers(1, V, size=int((src == 0).sum()))
    cases.append(_encoder_case("the same batch with other ids than <pad> at the padded positions (they must "
                               "not be read)", noisy, lengths, state, sizes, g))
    for label, (N, S, V, E, H), full in [("random weights, N=6, S=7, V=11, E=3, H=4", (6, 7, 11, 3, 4), False),
                                         ("random weights, one sequence of length 1", (1, 1, 5, 2, 3), False),
                                         ("random weights, H=1", (3, 5, 6, 2, 1), False),
                                         ("random weights, no padding (every length is S=4)", (3, 4, 7, 3, 2), True)]:
        g = _seed(rng, None)
        lengths = np.full(N, S) if full else g.integers(1, S + 1, size=N)
        lengths[0] = S  # a batch is padded to its longest sequence
        if N > 2 and not full:
            lengths[1] = 1
        state = {"embedding.weight": g.standard_normal((V, E)), **_gru_state(g, "rnn", E, H)}
        cases.append(_encoder_case(label, _padded_tokens(g, lengths, S, V), lengths, state, (V, E, H), g))
    return cases


def _encoder_mistake(kind):
    def outputs(case):
        import torch

        enc, t = _module(case, "Encoder"), _tensors(case)
        src, lengths = t["src"], t["lengths"]
        with torch.no_grad():
            if kind in ("no packing", "no packing, right final"):
                outputs, h_n = enc.rnn(enc.embedding(src))  # the GRU reads the padding too
                final = h_n[0] if kind == "no packing" else outputs[torch.arange(len(lengths)), lengths - 1]
            else:
                outputs, final = enc(src, lengths)
                final = outputs[:, -1]  # zeros for every sequence shorter than S
        return _arrays(outputs=outputs, final=final)
    return outputs


# no packing: the GRU reads the padding, and h_n is the state after the last padded position
def _wrong_encoder_no_packing(self, src, lengths):
    outputs, h_n = self.rnn(self.embedding(src))
    return outputs, h_n[0]


# no packing, but final picked at each length: final is right, outputs are not 0 on the padding
def _wrong_encoder_padding_in_outputs(self, src, lengths):
    import torch

    outputs, _ = self.rnn(self.embedding(src))
    return outputs, outputs[torch.arange(src.shape[0]), lengths - 1]


# final is the last column of the padded outputs, 0 for every sequence shorter than S
def _wrong_encoder_last_column(self, src, lengths):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=src.shape[1])
    return out, out[:, -1]


Encoder = TorchExercise(
    "Encoder", "torch_module", "Encoder", _encoder_cases, ("outputs", "final", *[f"d{p}" for p in ENCODER_PARAMS]),
    mistakes=[
        Mistake("the GRU read the padding too: `outputs` is not 0 at the padded positions, and `final` is the "
                "state after the last *padded* position. Pack the batch with pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, "
                "enforce_sorted=False) so that each sequence stops at its own length.",
                _encoder_mistake("no packing"), _learner_module("Encoder", _wrong_encoder_no_packing)),
        Mistake("`final` is right, but the GRU read the padding, so `outputs` is not 0 at the padded positions: "
                "pack the batch, and unpack it with pad_packed_sequence(..., batch_first=True, "
                "total_length=src.shape[1]), which puts zeros there.", _encoder_mistake("no packing, right final"),
                _learner_module("Encoder", _wrong_encoder_padding_in_outputs)),
        Mistake("outputs[:, -1] is the last *column* of the padded outputs, which is 0 for every sequence shorter "
                "than S: take h_n, the GRU's second return value, which holds each sequence's state after its "
                "last real token.", _encoder_mistake("last column"),
                _learner_module("Encoder", _wrong_encoder_last_column)),
    ],
    hints={"outputs": "embed, pack (pack_padded_sequence with enforce_sorted=False), run self.rnn, unpack with "
                      "pad_packed_sequence(..., batch_first=True, total_length=src.shape[1]).",
           "final": "final is h_n[0]: h_n, the GRU's second return value, is (1, N, H) and holds each "
                    "sequence's state after its last real token.",
           "final.shape": "final should be (N, H): for a one-layer GRU h_n is (1, N, H), so take h_n[0].",
           "outputs.shape": "outputs should be (N, S, H): unpack with pad_packed_sequence(packed, batch_first=True, "
                            "total_length=src.shape[1]) and keep only its first return value.",
           "crash": "pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False): the "
                    "lengths must be on the CPU, and they are not sorted; a packed sequence goes into self.rnn "
                    "as it is, and pad_packed_sequence returns (outputs, lengths)."},
)
Encoder.hints.update({f"d{p}": "the outputs are right, so autograd's gradients follow: keep to torch operations "
                               "(no .detach(), .numpy() or in-place changes)." for p in ENCODER_PARAMS})

# --- 10.2: Decoder ----------------------------------------------------------------------------

DECODER_PARAMS = ("embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                  "out.weight", "out.bias")


def _decoder_cases(rng):
    cases = []
    for label, (N, T, V, E, H), seed in [("fixed inputs, N=3, T=4, V=6, E=3, H=5", (3, 4, 6, 3, 5), 0),
                                         ("random inputs, one step (T=1), N=4", (4, 1, 7, 2, 3), None),
                                         ("random inputs, N=1", (1, 5, 5, 3, 4), None),
                                         ("random inputs, H=1", (2, 3, 6, 2, 1), None),
                                         ("random inputs, N=5, T=6, V=9, E=4, H=4", (5, 6, 9, 4, 4), None)]:
        g = _seed(rng, seed)
        state = {"embedding.weight": g.standard_normal((V, E)), **_gru_state(g, "rnn", E, H),
                 "out.weight": g.standard_normal((V, H)) / np.sqrt(H), "out.bias": g.standard_normal(V) * 0.5}
        args = {"tokens": g.integers(0, V, size=(N, T)), "hidden": np.tanh(g.standard_normal((N, H)))}
        cases.append(Case(label, args, options={"plan": {
            "init": {"vocab_size": V, "embed_size": E, "hidden_size": H}, "state": state,
            "returns": ("logits", "hidden"), "name": "Decoder",
            "douts": {"logits": g.standard_normal((N, T, V)), "hidden": g.standard_normal((N, H))},
            "grad_wrt": ("hidden",)}}))
    return cases


def _decoder_mistake(kind):
    def outputs(case):
        import torch

        dec, t = _module(case, "Decoder"), _tensors(case)
        with torch.no_grad():
            h0 = torch.zeros_like(t["hidden"]) if kind == "zeros" else t["hidden"]
            states, h_n = dec.rnn(dec.embedding(t["tokens"]), h0[None])
            logits, hidden = dec.out(states), h_n[0]
            if kind == "log_softmax":
                logits = torch.log_softmax(logits, dim=-1)
            elif kind == "softmax":
                logits = torch.softmax(logits, dim=-1)
            elif kind == "first state":
                hidden = states[:, 0]
        return _arrays(logits=logits, hidden=hidden)
    return outputs


# the GRU starts from zeros, not from the given hidden state
def _wrong_decoder_from_zeros(self, tokens, hidden):
    states, h_n = self.rnn(self.embedding(tokens))
    return self.out(states), h_n[0]


# log-probabilities instead of logits
def _wrong_decoder_log_softmax(self, tokens, hidden):
    import torch

    states, h_n = self.rnn(self.embedding(tokens), hidden[None])
    return torch.log_softmax(self.out(states), dim=-1), h_n[0]


# returns the state after the first token, not after the last
def _wrong_decoder_first_state(self, tokens, hidden):
    states, _ = self.rnn(self.embedding(tokens), hidden[None])
    return self.out(states), states[:, 0]


Decoder = TorchExercise(
    "Decoder", "torch_module", "Decoder", _decoder_cases,
    ("logits", "hidden", *[f"d{p}" for p in DECODER_PARAMS], "dhidden"),
    mistakes=[
        Mistake("the decoder started from zeros, ignoring `hidden`, the encoder's summary of the input: pass "
                "it to the GRU as its initial state, hidden[None] (shape (1, N, H)).", _decoder_mistake("zeros"),
                _learner_module("Decoder", _wrong_decoder_from_zeros)),
        Mistake("these are log-probabilities: return the raw scores (logits) of self.out; the loss, "
                "F.cross_entropy, applies log_softmax itself.", _decoder_mistake("log_softmax"),
                _learner_module("Decoder", _wrong_decoder_log_softmax)),
        Mistake("these are probabilities: return the raw scores (logits) of self.out; the loss, "
                "F.cross_entropy, applies the softmax itself.", _decoder_mistake("softmax")),
        Mistake("the returned `hidden` is the state after the first token; it should be the state after "
                "the *last* one (h_n[0]), from which decoding continues.", _decoder_mistake("first state"),
                _learner_module("Decoder", _wrong_decoder_first_state)),
    ],
    hints={"logits": "embed the tokens (N, T, E), run self.rnn from hidden[None], and apply self.out to every "
                     "step's state: (N, T, H) -> (N, T, V).",
           "hidden": "return the GRU's final state h_n[0], (N, H).",
           "hidden.shape": "hidden should be (N, H): the GRU returns h_n as (1, N, H), so take h_n[0].",
           "logits.shape": "logits should be (N, T, V): apply self.out to the states of every step, not only "
                           "to the last one.",
           "crash": "nn.GRU(batch_first=True) wants the initial state as (1, N, H): pass hidden[None] "
                    "(or hidden.unsqueeze(0)), and take h_n[0] to return (N, H)."},
)
Decoder.hints.update({f"d{p}": "the outputs are right, so autograd's gradients follow: keep to torch operations "
                               "(no .detach(), .numpy() or in-place changes)." for p in (*DECODER_PARAMS, "hidden")})

# --- 10.3: teacher_forcing_loss -------------------------------------------------------------------

SEQ2SEQ_PARAMS = ("encoder.embedding", "decoder.table", "decoder.embedding", "decoder.W", "decoder.out")


def _tiny_model(g, Vs, V, H):
    """Random weights of the small encoder and decoder that ``conventions.build_seq2seq`` builds."""
    return {"src_embedding": g.standard_normal((Vs, H)), "table": g.standard_normal((V, V)),
            "embedding": g.standard_normal((V, H)), "W": g.standard_normal((H, H)) / np.sqrt(H),
            "out": g.standard_normal((H, V)) * 1.5}


def _targets(g, lengths, V, pad_id, start=1, end=2):
    """int (N, max(lengths) + 2): <start> y_1 .. y_n <end> then pad_id, ids y drawn from the rest."""
    ordinary = np.array([i for i in range(V) if i not in (pad_id, start, end)])
    tgt = np.full((len(lengths), max(lengths) + 2), pad_id, dtype=np.int64)
    for n, L in enumerate(lengths):
        tgt[n, :L + 2] = [start, *g.choice(ordinary, size=L), end]
    return tgt


def _loss_cases(rng):
    cases = []
    for label, (Vs, V, H), lengths, pad_id, seed in [
            ("fixed weights and batch: N=4, targets of 5, 2, 4 and 1 tokens + <end>, pad_id=0", (8, 7, 4),
             [5, 2, 4, 1], 0, 0),
            ("one sequence (N=1), no padding", (6, 6, 3), [4], 0, 1),
            ("pad_id=3 (and 0 an ordinary token), N=3", (7, 8, 3), [3, 6, 1], 3, 2),
            ("N=6, V=9, H=5, targets of 1 to 7 tokens", (9, 9, 5), [7, 1, 3, 6, 2, 5], 0, 3)]:
        g = np.random.default_rng(100 + seed)  # fixed draws: the verdict never depends on luck
        src_lengths = np.maximum(1, g.integers(1, 6, size=len(lengths)))
        src = _padded_tokens(g, src_lengths, int(src_lengths.max()), Vs)
        cases.append(Case(label, {"src": src, "src_lengths": src_lengths.astype(np.int64),
                                  "tgt": _targets(g, lengths, V, pad_id), "pad_id": pad_id},
                          options={"plan": {"model": _tiny_model(g, Vs, V, H)}}))
    return cases


def _loss_variant(kind):
    """The model of a mistake: teacher_forcing_loss as a learner with the misunderstanding ``kind`` writes it."""
    def loss(encoder, decoder, src, src_lengths, tgt, pad_id):
        import torch

        _, final = encoder(src, src_lengths)
        if kind == "zeros":
            final = torch.zeros_like(final)
        reads, targets = teacher_forcing_split(tgt, kind)
        if kind == "own predictions":
            token, hidden, steps = tgt[:, :1], final, []
            for _ in range(targets.shape[1]):
                logits_t, hidden = decoder(token, hidden)
                steps.append(logits_t)
                token = logits_t.argmax(dim=-1)
            logits = torch.cat(steps, dim=1)
        else:
            logits, _ = decoder(reads, final)
        return padded_token_loss(logits, targets, pad_id, kind)
    loss.__name__ = "teacher_forcing_loss"
    return _run_through("teacher_forcing_loss", loss)


teacher_forcing_loss = TorchExercise(
    "teacher_forcing_loss", "torch_seq2seq_loss", "teacher_forcing_loss", _loss_cases,
    ("loss", *[f"d{p}" for p in SEQ2SEQ_PARAMS]),
    mistakes=_implemented([
        *teacher_forcing_mistakes(_loss_variant, {"item": "token", "batch": "tgt", "y": "y", "row": "sequence",
                                                  "length": "target"}),
        Mistake("the decoder read its own predictions (argmax) instead of the true previous tokens: teacher "
                "forcing feeds it tgt without its last column, all steps in one call.",
                _loss_variant("own predictions")),
        Mistake("the decoder started from zeros: start it from the encoder's final state (the second value "
                "the encoder returns), the summary of the input.", _loss_variant("zeros")),
    ]),
    hints={"loss": "no mistake we know of gives this value: compare your steps with the three parts of the "
                   "exercise (what the decoder reads, what it is scored on, which positions count), and open "
                   "the hints under the exercise.",
           "crash": "encoder(src, src_lengths) returns (outputs, final); decoder(tokens (N, T), final) returns "
                    "(logits (N, T, V), hidden); F.cross_entropy wants logits as (N * T, V) and targets as "
                    "(N * T,): reshape both (use .reshape, not .view, on a slice of tgt)."},
)
teacher_forcing_loss.hints.update({f"d{p}": "the loss is right, so its gradients follow: keep to torch operations "
                                            "(no .item(), .detach() or .numpy() inside the loss)."
                                   for p in SEQ2SEQ_PARAMS})

# --- 10.4: greedy_decode -------------------------------------------------------------------------

# A decoder made for greedy decoding (V = 9: 0 <pad>, 1 <start>, 2 <end>, 3..8 ordinary tokens, H = V):
# the encoder's final state picks the first token, then each token has one likely successor:
# 3 -> 4 -> <end>, 8 -> <end>, and 5 -> 6 -> 7 -> 5 -> ... which never ends. After <end> comes 3,
# so a batch is not done when its *last* tokens are all <end>.
_SUCCESSOR = {0: 3, 1: None, 2: 3, 3: 4, 4: 2, 5: 6, 6: 7, 7: 5, 8: 2}


def _greedy_model(first_tokens):
    V = H = 9
    table = np.zeros((V, V))
    for token, nxt in _SUCCESSOR.items():
        if nxt is not None:
            table[token, nxt] = 6.0
    src_embedding = np.zeros((V, H))
    src_embedding[np.arange(V), np.arange(V)] = 8.0  # source token k: a final state that points at token k
    model = {"src_embedding": src_embedding, "table": table, "embedding": np.zeros((V, H)),
             "W": np.eye(H) * 0.5, "out": np.eye(H) * 10.0}  # the pointer fades: tanh(0.5 h) each step
    src = np.asarray(first_tokens, dtype=np.int64)[:, None]
    return model, src


def _greedy_case(label, model, src, src_lengths, max_len):
    return Case(label, {"src": src, "src_lengths": np.asarray(src_lengths, dtype=np.int64), "start_id": 1,
                        "end_id": 2, "max_len": max_len}, options={"plan": {"model": model}})


def _greedy_cases(rng):
    cases = []
    model, src = _greedy_model([3, 5, 2, 8])
    cases.append(_greedy_case("a fixed decoder, N=4: one sequence ends after 2 tokens, one never ends, one at once, "
                              "one after 1 token; max_len=6", model, src, [1, 1, 1, 1], 6))
    model, src = _greedy_model([3, 8, 3])
    cases.append(_greedy_case("the same decoder, N=3: every sequence ends by step 3; max_len=8",
                              model, src, [1, 1, 1], 8))
    model, src = _greedy_model([5])
    cases.append(_greedy_case("the same decoder, one sequence (N=1) that never ends; max_len=4",
                              model, src, [1], 4))
    g = np.random.default_rng(48)  # a decoder whose five outputs differ, some of them max_len long
    lengths = np.array([4, 2, 3, 1, 4])
    model = _tiny_model(g, 6, 7, 4)
    model["table"][:, :2] -= 10.0  # <pad> and <start> are never produced
    cases.append(_greedy_case("a fixed random decoder, N=5, V=7, H=4; max_len=5", model,
                              _padded_tokens(g, lengths, 4, 6), lengths, 5))
    return cases


def _greedy_variant(kind):
    """The model of a mistake: greedy_decode as a learner with the misunderstanding ``kind`` writes it."""
    def decode(encoder, decoder, src, src_lengths, start_id, end_id, max_len):
        import torch

        _, hidden = encoder(src, src_lengths)
        tokens = torch.full((src.shape[0], 1), start_id, dtype=torch.long)
        steps = []
        for _ in range(max_len):
            logits, new_hidden = decoder(tokens, hidden)
            if kind != "state not carried":
                hidden = new_hidden
            tokens = logits.argmax(dim=1 if kind == "wrong axis" else -1)
            if kind == "wrong axis":
                tokens = tokens[:, :1]
            steps.append(tokens[:, 0])
            if kind != "never stops" and bool((torch.stack(steps, 1) == end_id).any(1).all()):
                break
        out = []
        for row in torch.stack(steps, 1).tolist():
            if kind in ("never stops", "with end", "with start"):
                row = row[:row.index(end_id) + 1] if kind == "with end" and end_id in row else row
                if kind == "with start":
                    row = [start_id] + (row[:row.index(end_id)] if end_id in row else row)
            else:
                row = row[:row.index(end_id)] if end_id in row else row
            out.append(row)
        return out
    decode.__name__ = "greedy_decode"
    return _run_through("greedy_decode", decode)


class GreedyDecodeExercise(GreedyOutputExercise):
    """Judges each sequence's tokens, then that the loop stopped once every sequence had produced <end>."""

    words = GreedyOutputExercise.words

    def plan(self, case):
        """The case's fixed model (its weights, as plain arrays) and its inputs; nothing else is sent."""
        return self.convention, {"model": case.options["plan"]["model"], "args": case.args}


greedy_decode = GreedyDecodeExercise(
    "greedy_decode", "torch_greedy_decode", "greedy_decode", _greedy_cases, ("tokens", "lengths", "rows"),
    mistakes=_implemented([
        Mistake("the output goes on after <end>: a sequence's output is the tokens *before* its first <end>; "
                "cut it there (and stop decoding once every sequence has finished).", _greedy_variant("never stops")),
        Mistake("leave <end> out of the output: it marks where the sequence stops and is not part of it.",
                _greedy_variant("with end")),
        Mistake("leave <start> out of the output: it is the decoder's first input, not something it produced.",
                _greedy_variant("with start")),
        Mistake("the argmax went over the wrong axis: logits are (N, 1, V), and the most probable token is the "
                "argmax over the vocabulary, the last axis (dim=-1).", _greedy_variant("wrong axis")),
        Mistake("every step started from the encoder's state: feed the decoder the hidden state it returned at "
                "the step before.", _greedy_variant("state not carried")),
    ]),
    hints={"tokens": "no mistake we know of gives these tokens: at each step feed the decoder the tokens it chose "
                     "at the step before, shape (N, 1), with the hidden state it returned; see the hints under the "
                     "exercise.",
           "crash": "the decoder takes tokens (N, T) and hidden (N, H) and returns logits (N, T, V) and hidden "
                    "(N, H): feed it one step at a time, tokens of shape (N, 1), starting from a column of "
                    "start_id; logits.argmax(dim=-1) is then (N, 1), the next input."},
)


# --- 10.3: beam_search --------------------------------------------------------------------------

PAD, START, END = 0, 1, 2


def _table(probs):
    """A (V, V) table of log-probabilities from rows of (unnormalised) probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return np.log(p / p.sum(axis=1, keepdims=True))


# Tokens: 0 <pad>, 1 <start>, 2 <end>, 3 "a", 4 "b". After <start>, "a" is likelier than "b"; after
# "a" anything may follow; after "b", almost surely <end>. Greedy takes "a" and never ends;
# a beam of two keeps "b" too, and finds "b <end>" (probability 0.4 * 0.9 = 0.36).
GREEDY_FAILS = _table([
    [1e-3, 1e-3, 0.2, 0.4, 0.4],  # after <pad> (never used)
    [1e-3, 1e-3, 0.09, 0.5, 0.4],  # after <start>
    [1e-3, 1e-3, 0.4, 0.3, 0.3],  # after <end> (never used by a right beam search)
    [1e-3, 1e-3, 0.32, 0.35, 0.33],  # after "a"
    [1e-3, 1e-3, 0.9, 0.05, 0.05],  # after "b"
])


# Tokens: 0 <pad>, 1 <start>, 2 <end>, 3 "a", 4 "b", 5 "x", 6 "p", 7 "q", 8 "r". With a beam of two,
# "a <end>" (0.225) finishes at step 2 and the beam shrinks to one hypothesis, which follows
# "b x p r <end>" (0.75 * 0.85 * 0.52 * 0.9 * 1 = 0.298). A beam that stays two wide also keeps
# "b x q" at step 3 and finds "b x q <end>" (0.306), which this beam search does not look for.
_RARE = 1e-3
FINISHED_SHRINK = _table([
    [_RARE] * 9,  # after <pad> (never used)
    [_RARE, _RARE, _RARE, 0.25, 0.75, _RARE, _RARE, _RARE, _RARE],  # after <start>: "b" likelier than "a"
    [_RARE] * 9,  # after <end> (never used)
    [_RARE, _RARE, 0.9, _RARE, _RARE, _RARE, _RARE, _RARE, _RARE],  # after "a": <end>
    [_RARE, _RARE, _RARE, 0.15, _RARE, 0.85, _RARE, _RARE, _RARE],  # after "b": "x"
    [_RARE, _RARE, _RARE, _RARE, _RARE, _RARE, 0.52, 0.48, _RARE],  # after "x": "p" or "q"
    [_RARE, _RARE, 0.1, _RARE, _RARE, _RARE, _RARE, _RARE, 0.9],  # after "p": "r"
    [_RARE, _RARE, 1.0, _RARE, _RARE, _RARE, _RARE, _RARE, _RARE],  # after "q": <end>
    [_RARE, _RARE, 1.0, _RARE, _RARE, _RARE, _RARE, _RARE, _RARE],  # after "r": <end>
])


# Tokens: 0 <pad>, 1 <start>, 2 <end>, 3 "a", 4 "b", 5 "x", 6 "y". A beam of two finishes "a <end>"
# (0.545 * 0.9 = 0.49) and "b x y <end>" (0.455 * 0.968**3 = 0.41): the short one is the more probable.
# Ranked by score / ((5 + length) / 6) ** alpha, the short one still wins at alpha = 0.5 and 1, the long
# one at alpha = 2. Counting the length without <end> makes the long one win at alpha = 1; dividing by
# length ** alpha, at alpha = 0.5 already; ignoring alpha, or multiplying by the penalty, never.
LENGTH_BIAS = _table([
    [_RARE] * 7,  # after <pad> (never used)
    [_RARE, _RARE, _RARE, 0.545, 0.455, _RARE, _RARE],  # after <start>: "a" likelier than "b"
    [_RARE] * 7,  # after <end> (never used)
    [_RARE, _RARE, 0.9, _RARE, _RARE, _RARE, _RARE],  # after "a": <end>
    [_RARE, _RARE, _RARE, _RARE, _RARE, 0.968, _RARE],  # after "b": "x"
    [_RARE, _RARE, _RARE, _RARE, _RARE, _RARE, 0.968],  # after "x": "y"
    [_RARE, _RARE, 0.968, _RARE, _RARE, _RARE, _RARE],  # after "y": <end>
])


def _gru_decoder(g, V, E, H, end_bias=-1.0):
    """Random weights of notebook 10's Decoder architecture (one step at a time), as plain arrays.
    A negative end_bias makes <end> less likely, so that hypotheses grow longer than one token."""
    return {"kind": "gru", "embedding": g.standard_normal((V, E)),
            "weight_ih": g.standard_normal((3 * H, E)) / np.sqrt(E), "weight_hh": g.standard_normal((3 * H, H)) * 1.5,
            "bias_ih": g.standard_normal(3 * H) * 0.5, "bias_hh": g.standard_normal(3 * H) * 0.5,
            "out_weight": g.standard_normal((V, H)) * 2.0,
            "out_bias": np.where(np.arange(V) == END, end_bias, g.standard_normal(V) * 0.5)}


def _beam_case(label, decoder, hidden, beam_width, max_len, alpha=None):
    args = {"decoder": decoder, "hidden": hidden, "start_id": START, "end_id": END,
            "beam_width": beam_width, "max_len": max_len}
    return Case(label, args if alpha is None else {**args, "alpha": alpha})


def _beam_plan(args):
    """The convention of a case: alpha, the length-penalty exponent, is passed only where a case sets it."""
    return ("torch_beam_search_lp" if "alpha" in args else "torch_beam_search"), dict(args)


def _beam_cases(rng):
    no_state = np.zeros((1, 2))  # the table decoders ignore their state
    cases = [_beam_case("a decoder on which greedy decoding fails, beam width 2, max_len 4",
                        {"kind": "table", "log_probs": GREEDY_FAILS}, no_state, 2, 4),
             _beam_case("the same decoder, beam width 1 (greedy decoding), max_len 4",
                        {"kind": "table", "log_probs": GREEDY_FAILS}, no_state, 1, 4),
             _beam_case("a decoder on which a hypothesis finishes early, beam width 2, max_len 6",
                        {"kind": "table", "log_probs": FINISHED_SHRINK}, no_state, 2, 6)]
    g = np.random.default_rng(35)  # a decoder on which beam and greedy differ, with a 4-token answer
    cases.append(_beam_case("a fixed GRU decoder, V=7, H=4, beam width 3, max_len 6", _gru_decoder(g, 7, 3, 4),
                            np.tanh(g.standard_normal((1, 4))), 3, 6))
    for label, (V, E, H, width, max_len) in [("a random GRU decoder, V=8, H=5, beam width 4, max_len 7", (8, 3, 5, 4, 7)),
                                             ("a random GRU decoder, V=6, H=3, beam width 2, max_len 5", (6, 2, 3, 2, 5)),
                                             ("a random GRU decoder, H=1, beam width 5, max_len 6", (7, 2, 1, 5, 6))]:
        g = _seed(rng, None)
        cases.append(_beam_case(label, _gru_decoder(g, V, E, H), np.tanh(g.standard_normal((1, H))), width, max_len))
    # the length penalty last: a search written before it was asked for is judged on the rest first
    cases += [_beam_case(f"a decoder whose most probable hypothesis is the shorter one, beam width 2, max_len 6, "
                         f"alpha={alpha}", {"kind": "table", "log_probs": LENGTH_BIAS}, no_state, 2, 6, alpha)
              for alpha in (0.5, 1.0, 2.0)]
    g = np.random.default_rng(35)
    cases.append(_beam_case("the fixed GRU decoder, beam width 5, max_len 6, alpha=1.0 (the penalty changes the "
                            "answer)", _gru_decoder(g, 7, 3, 4), np.tanh(g.standard_normal((1, 4))), 5, 6, 1.0))
    return cases


def _beam_variant(kind):
    """The model of a mistake: beam_search as a learner with the misunderstanding ``kind`` writes it."""
    def search(step, hidden, start_id, end_id, beam_width, max_len, alpha=0.0):
        import torch

        from course_utils.reference import beam_search
        from course_utils.lessons.nb10_seq2seq.reference import beam_hypotheses

        if kind in _PENALTY_MISTAKES:  # the right search, the finished hypotheses ranked wrongly
            finished = beam_hypotheses(step, hidden, start_id, end_id, beam_width, max_len)
            tokens, score = max(finished, key=lambda pair: _PENALTY_MISTAKES[kind](pair[1], len(pair[0]), alpha))
            return tokens, (score / ((5 + len(tokens)) / 6) ** alpha if kind == "normalised score" else score)
        if kind == "greedy":
            return beam_search(step, hidden, start_id, end_id, 1, max_len, alpha)
        if kind in ("with start", "without end", "probability"):
            tokens, score = beam_search(step, hidden, start_id, end_id, beam_width, max_len, alpha)
            if kind == "with start":
                return [start_id] + tokens, score
            if kind == "without end":
                return [t for t in tokens if t != end_id], score
            return tokens, float(np.exp(score))
        sequences, scores = [[]], torch.zeros(1, dtype=hidden.dtype)
        tokens, finished = torch.full((1,), start_id, dtype=torch.long), []
        for _ in range(max_len):
            log_probs, hidden = step(tokens, hidden)
            V = log_probs.shape[1]
            candidates = (scores[:, None] + log_probs).reshape(-1)
            width = beam_width if kind in ("full width", "no end") else beam_width - len(finished)
            top_scores, top = candidates.topk(min(width, candidates.numel()))
            parents, next_tokens = top // V, top % V
            live = [k for k in range(len(top)) if kind == "no end" or int(next_tokens[k]) != end_id]
            finished += [(sequences[int(parents[k])] + [end_id], float(top_scores[k]))
                         for k in range(len(top)) if k not in live]
            if not live:
                break
            sequences = [sequences[int(parents[k])] + [int(next_tokens[k])] for k in live]
            keep = torch.tensor(live)
            tokens, scores = next_tokens[keep], top_scores[keep]
            if kind == "not reordered":  # row k goes on from the old beam's row k, not from its parent
                hidden = hidden[torch.arange(len(keep)) % hidden.shape[0]]
            else:
                hidden = hidden[parents[keep]]
        if not finished:
            finished = [(s, float(v)) for s, v in zip(sequences, scores)]
        return max(finished, key=lambda pair: pair[1] / ((5 + len(pair[0])) / 6) ** alpha)
    search.__name__ = "beam_search"
    return _run_through("beam_search", search)


# How a learner may rank the finished hypotheses wrongly: key(score, length, alpha), the largest wins.
_PENALTY_MISTAKES = {
    "penalty ignored": lambda score, length, alpha: score,
    "length without end": lambda score, length, alpha: score / ((5 + length - 1) / 6) ** alpha,
    "length ** alpha": lambda score, length, alpha: score / length ** alpha,
    "multiplied": lambda score, length, alpha: score * ((5 + length) / 6) ** alpha,
    "normalised score": lambda score, length, alpha: score / ((5 + length) / 6) ** alpha,
}


# greedy decoding: the most probable token at each step, one hypothesis
def _wrong_beam_greedy(step, hidden, start_id, end_id, beam_width, max_len):
    import torch

    tokens, out, score = torch.tensor([start_id]), [], 0.0
    for _ in range(max_len):
        log_probs, hidden = step(tokens, hidden)
        token = int(log_probs[0].argmax())
        score += float(log_probs[0, token])
        out.append(token)
        if token == end_id:
            break
        tokens = torch.tensor([token])
    return out, score


# the beam stays beam_width wide after a hypothesis finishes (fairseq's convention)
def _wrong_beam_full_width(step, hidden, start_id, end_id, beam_width, max_len):
    import torch

    sequences, scores, tokens, finished = [[]], torch.zeros(1, dtype=hidden.dtype), torch.tensor([start_id]), []
    for _ in range(max_len):
        log_probs, hidden = step(tokens, hidden)
        V = log_probs.shape[1]
        top_scores, top = (scores[:, None] + log_probs).flatten().topk(min(beam_width, log_probs.numel()))
        live = [k for k in range(len(top)) if int(top[k] % V) != end_id]
        finished += [(sequences[top[k] // V] + [end_id], float(top_scores[k]))
                     for k in range(len(top)) if k not in live]
        if not live:
            break
        keep = torch.tensor(live)
        sequences = [sequences[top[k] // V] + [int(top[k] % V)] for k in live]
        tokens, scores, hidden = top[keep] % V, top_scores[keep], hidden[top[keep] // V]
    if not finished:
        finished = [(s, float(v)) for s, v in zip(sequences, scores)]
    return max(finished, key=lambda f: f[1])


# <end> is treated like any token: hypotheses go on after it, and the best one after max_len steps wins
def _wrong_beam_extends_finished(step, hidden, start_id, end_id, beam_width, max_len):
    import torch

    sequences, scores, tokens = [[]], torch.zeros(1, dtype=hidden.dtype), torch.tensor([start_id])
    for _ in range(max_len):
        log_probs, hidden = step(tokens, hidden)
        V = log_probs.shape[1]
        top_scores, top = (scores[:, None] + log_probs).flatten().topk(min(beam_width, log_probs.numel()))
        sequences = [sequences[p] + [int(t)] for p, t in zip((top // V).tolist(), (top % V).tolist())]
        tokens, scores, hidden = top % V, top_scores, hidden[top // V]
    return sequences[0], float(scores[0])


class BeamSearchExercise(TorchExercise):
    """beam_search(step, hidden, start_id, end_id, beam_width, max_len, alpha=0.0) -> (tokens, score), run on
    fixed decoders built in the child from plain arrays (the ``torch_beam_search`` convention, and
    ``torch_beam_search_lp`` for the cases with a length penalty)."""

    def plan(self, case):
        """``torch_beam_search``, or ``torch_beam_search_lp`` on the cases that pass alpha."""
        return _beam_plan(case.args)

    def raised(self, case, message, where=""):
        """A beam_search without the argument alpha gets a hint that names it."""
        verdict = super().raised(case, message, where)
        if "alpha" in case.args and message.startswith("TypeError") and "7 were given" in message:
            verdict = self.fail(case, "your code raised an error", detail=f"error: {message[:300]}",
                                hint="beam_search takes a seventh argument, alpha, the exponent of the length "
                                     "penalty: def beam_search(step, hidden, start_id, end_id, beam_width, "
                                     "max_len, alpha=0.0). See the last bullet of the exercise.")
        return verdict

    def tolerance(self, case, name):
        """1e-5: a score summed partly in float32 is still right; real mistakes are off by more than 1e-2."""
        return 1e-5  # a score summed partly in float32 is still right; real mistakes are off by > 1e-2

    def judge(self, case, outputs, modified=()):
        """Judged on the tokens first, with a hypothesis more probable than the beam's told apart from
        a wrong one, then on the score as the decoder's log-probability of the returned tokens."""
        expected = self.expected(case)
        tokens, score = outputs.get("tokens"), outputs.get("score")
        true = _log_probability(case, tokens) if tokens is not None else None
        if tokens is not None and (tokens.shape != expected["tokens"].shape
                                   or not np.array_equal(tokens, expected["tokens"])):
            got = f"{tokens.tolist()}" + (f" (score {float(score):.4f})" if score is not None else "")
            want = f"{expected['tokens'].tolist()} (score {float(expected['score']):.4f})"
            if true is not None and true > float(expected["score"]) + 1e-9 and not case.args.get("alpha"):
                # a more probable hypothesis than this beam finds: a wider search, not a wrong one
                return self.fail(case, "your search found a more probable hypothesis than the beam this exercise "
                                 "asks for", f"tokens: {got}, expected {want}",
                                 self.known_mistake(case, outputs) or CONVENTION_HINT, "tokens")
            hint = self.known_mistake(case, outputs) or self.hints["tokens"]
            return self.fail(case, "the returned tokens are not the best hypothesis of the beam",
                             f"tokens: {got}, expected {want}", hint, "tokens")
        if (true is not None and score is not None and score.shape == ()
                and abs(float(score) - true) > 1e-5 * max(1.0, abs(true))):
            hint = self.known_mistake(case, outputs) or self.hints["score"]
            return self.fail(case, "the score is not the log-probability of the returned tokens",
                             f"score: {float(score):.4f}; the decoder gives these tokens {true:.4f}", hint, "score")
        return super().judge(case, outputs, modified)


def _log_probability(case, tokens):
    """The sum of the log-probabilities of ``tokens`` after <start>, under the case's decoder (None if
    they are not a sequence of valid ids)."""
    import torch

    from course_utils.checking.conventions import decoder_step, to_tensor

    args = case.args
    try:
        step, hidden = decoder_step(args["decoder"]), to_tensor(args["hidden"])
        token, total = torch.tensor([int(args["start_id"])]), 0.0
        for t in np.asarray(tokens).tolist():
            log_probs, hidden = step(token, hidden)
            total += float(log_probs[0, int(t)])
            token = torch.tensor([int(t)])
        return total
    except Exception:
        return None


CONVENTION_HINT = (
    "this exercise asks for the beam of Jurafsky and Martin: a hypothesis that produces <end> leaves the beam, "
    "which keeps only beam_width - len(finished) hypotheses from then on. A beam that stays beam_width wide "
    "after a hypothesis ends (fairseq's convention) explores more hypotheses and can find a more probable one, "
    "as here; both are beam search, but the check expects the narrowing beam's answer.")

PENALTY_HINT = (
    "with alpha > 0 the finished hypotheses are ranked by their length-normalised score, "
    "score / ((5 + length) / 6) ** alpha, and yours is the one with the best plain score. Check "
    "that alpha is used, and that the score is *divided* by the penalty: scores are negative, so "
    "multiplying by a penalty above 1 favours short hypotheses even more.")


beam_search = BeamSearchExercise(
    "beam_search", "torch_beam_search", "beam_search", _beam_cases, ("tokens", "score"),
    mistakes=_implemented([
        # the length penalty's mistakes first: on the cases without alpha they give the right answer, and on
        # the cases with it a greedy search can also return the shorter hypothesis
        Mistake(PENALTY_HINT, _beam_variant("penalty ignored")),
        Mistake(PENALTY_HINT, _beam_variant("multiplied")),  # the same answer as ignoring the penalty, here
        Mistake("the length of a hypothesis counts all its tokens, the final <end> included (its log-probability "
                "is in the score too): len(tokens), not len(tokens) - 1.", _beam_variant("length without end")),
        Mistake("the penalty is GNMT's, ((5 + length) / 6) ** alpha, not length ** alpha: the two rank "
                "hypotheses differently.", _beam_variant("length ** alpha")),
        Mistake("the length penalty only ranks the hypotheses: return the chosen one's plain score, the sum "
                "of its log-probabilities, not the normalised one.", _beam_variant("normalised score")),
        Mistake("that is greedy decoding's answer: keep the beam_width best extensions at each step, not only "
                "the best one.", _beam_variant("greedy"), _wrong_beam_greedy),
        Mistake("your beam stays beam_width wide after a hypothesis finishes: " + CONVENTION_HINT,
                _beam_variant("full width"), _wrong_beam_full_width),
        Mistake("each kept hypothesis must continue from the state of the hypothesis it extends, its parent: "
                "reorder the states with hidden[parents] (row k of the hidden that step returned belongs to the "
                "old beam's hypothesis k, not to the new beam's).", _beam_variant("not reordered")),
        Mistake("a hypothesis that produces <end> is finished: set it aside (with its score) and do not "
                "extend it further.", _beam_variant("no end"), _wrong_beam_extends_finished),
        Mistake("leave <start> out of the returned tokens: return only the tokens the decoder produced.",
                _beam_variant("with start")),
        Mistake("keep the final <end> in the returned tokens: it is part of the hypothesis, and its "
                "log-probability is part of the score.", _beam_variant("without end")),
        Mistake("the score is the sum of the log-probabilities of the tokens (a negative number), not the "
                "probability of the sequence.", _beam_variant("probability")),
    ]),
    hints={"tokens": "at each step: log_probs, hidden = step(tokens, hidden); score every extension as its "
                     "hypothesis's score + log_probs (B, V); keep the best beam_width - len(finished) of the "
                     "B * V; set aside those that end with <end>; continue the others from their parents' "
                     "states, hidden[parents].",
           "score": "the score of a hypothesis is the sum of the log-probabilities of all its tokens, the "
                    "final <end> included, each computed from the state of that hypothesis (its parent's "
                    "state, hidden[parents]); no mistake we know of gives this score.",
           "crash": "beam_search takes seven arguments, the last one alpha (0.0 by default). step takes tokens "
                    "as a 1-D int64 tensor (B,), the last token of each live hypothesis, "
                    "and hidden (B, H), one row per hypothesis: at the first step torch.tensor([start_id]) and "
                    "the given hidden (1, H); later the kept hypotheses' last tokens and their parents' states, "
                    "hidden[parents]."},
)
