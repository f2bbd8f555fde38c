"""Checks of notebook 13 (image captioning): the loss of a decoder whose initial state comes from the
image, greedy sampling of a caption, and additive attention over an image's feature grid."""
from __future__ import annotations

import numpy as np

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise_torch import (
    GreedyOutputExercise, TorchExercise, padded_token_loss, teacher_forcing_mistakes, teacher_forcing_split,
)
from course_utils.checking.exercise_torch import wrong_module  # a module with a wrong forward

PAD, START, END = 0, 1, 2
CAPTIONER_PARAMS = ("encoder.1.weight", "encoder.1.bias", "init_state.weight", "init_state.bias", "embedding.weight",
                    "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "out.weight", "out.bias")


def _captioner(g, D, F, E, H, V, scale=1.0):
    """Random weights of ``conventions.build_captioner``'s model, as plain arrays."""
    return {"encoder.1.weight": g.standard_normal((F, D)) / np.sqrt(D), "encoder.1.bias": g.standard_normal(F) * 0.5,
            "init_state.weight": g.standard_normal((H, F)) * 1.5 / np.sqrt(F), "init_state.bias": g.standard_normal(H),
            "embedding.weight": g.standard_normal((V, E)),
            "rnn.weight_ih_l0": g.standard_normal((3 * H, E)) / np.sqrt(E),
            "rnn.weight_hh_l0": g.standard_normal((3 * H, H)) / np.sqrt(H),
            "rnn.bias_ih_l0": g.standard_normal(3 * H) * 0.5, "rnn.bias_hh_l0": g.standard_normal(3 * H) * 0.5,
            "out.weight": g.standard_normal((V, H)) * scale, "out.bias": g.standard_normal(V) * 0.5}


def _captions(g, lengths, V, pad_id):
    """int (N, max(lengths) + 2): <start> w_1 .. w_n <end> then pad_id, words drawn from the rest."""
    ordinary = np.array([i for i in range(V) if i not in (pad_id, START, END)])
    out = np.full((len(lengths), max(lengths) + 2), pad_id, dtype=np.int64)
    for n, L in enumerate(lengths):
        out[n, :L + 2] = [START, *g.choice(ordinary, size=L), END]
    return out


# --- 13.1: caption_loss --------------------------------------------------------------------------


def _loss_cases(rng):
    cases = []
    for label, (D, F, E, H, V), lengths, pad_id, seed in [
            ("fixed weights and batch: N=4 images, captions of 5, 2, 4 and 1 words + <end>, pad_id=0",
             (6, 4, 3, 5, 8), [5, 2, 4, 1], 0, 0),
            ("one image (N=1), no padding", (4, 3, 2, 4, 6), [4], 0, 1),
            ("pad_id=3 (and 0 an ordinary word), N=3", (6, 5, 3, 3, 8), [3, 6, 1], 3, 2),
            ("N=6, V=9, H=5, captions of 1 to 7 words", (5, 4, 4, 5, 9), [7, 1, 3, 6, 2, 5], 0, 3)]:
        g = np.random.default_rng(130 + seed)  # fixed draws: the verdict never depends on luck
        images = g.standard_normal((len(lengths), 2, D // 2 if D % 2 == 0 else D))
        sizes = {"D": int(np.prod(images.shape[1:])), "F": F, "E": E, "H": H, "V": V}
        cases.append(Case(label, {"images": images, "captions": _captions(g, lengths, V, pad_id), "pad_id": pad_id},
                          options={"plan": {"sizes": sizes, "state": _captioner(g, sizes["D"], F, E, H, V)}}))
    return cases


def _wrong_caption_loss(kind):
    """caption_loss as a learner with the misunderstanding ``kind`` writes it: the decoder started from
    "zeros", or from the image "no tanh"; or one of ``teacher_forcing_mistakes``' kinds."""
    def caption_loss(model, images, captions, pad_id):
        import torch

        projected = model.init_state(model.encoder(images))
        h0 = {"zeros": torch.zeros_like(projected), "no tanh": projected}.get(kind, torch.tanh(projected))
        reads, targets = teacher_forcing_split(captions, kind)
        states, _ = model.rnn(model.embedding(reads), h0[None])
        return padded_token_loss(model.out(states), targets, pad_id, kind)
    return caption_loss


def _implemented(mistakes):
    """``teacher_forcing_mistakes`` puts what its variant gives in each entry's model; given
    ``_wrong_caption_loss``, that is a wrong implementation: put it where it belongs."""
    return [Mistake(m.hint, implementation=m.outputs) for m in mistakes]


class CaptionLossExercise(TorchExercise):
    """caption_loss(model, images, captions, pad_id) -> a scalar loss, on a fixed captioner; judged
    on the loss and on its gradient with respect to every parameter."""

    def plan(self, case):
        """The case's fixed model (sizes and weights) with its inputs as ``args``."""
        return self.convention, {**case.options["plan"], "args": case.args}


caption_loss = CaptionLossExercise(
    "caption_loss", "torch_caption_loss", "caption_loss", _loss_cases, ("loss", *[f"d{p}" for p in CAPTIONER_PARAMS]),
    mistakes=[
        Mistake("the decoder started from zeros, so the caption cannot depend on the image: its initial state is "
                "h_0 = tanh(init_state(encoder(images))).", implementation=_wrong_caption_loss("zeros")),
        Mistake("the initial state is init_state(encoder(images)) without the tanh: h_0 = tanh(...) keeps it in "
                "(-1, 1), the range of every state the GRU produces.",
                implementation=_wrong_caption_loss("no tanh")),
        *_implemented(teacher_forcing_mistakes(_wrong_caption_loss, {
            "item": "word", "batch": "captions", "y": "w", "row": "caption", "length": "caption"})),
    ],
    hints={"loss": "no mistake we know of gives this value: check the three parts of the exercise one by one "
                   "(the initial state from the image, what the decoder reads and what it is scored on, which "
                   "positions count), and open the hints under the exercise.",
           "crash": "model.encoder(images) is (N, F); model.init_state maps it to (N, H); nn.GRU(batch_first=True) "
                    "takes the initial state as (1, N, H), so pass h0[None]; F.cross_entropy wants logits as "
                    "(N * T, V) and targets as (N * T,): reshape both (use .reshape, not .view, on a slice)."},
)
caption_loss.hints.update({f"d{p}": "the loss is right, so its gradients follow: keep to torch operations "
                                    "(no .item(), .detach() or .numpy() inside the loss)." for p in CAPTIONER_PARAMS})


# --- 13.2: sample_caption ------------------------------------------------------------------------


def _sample_case(label, seed, N, max_len, sizes=(4, 3, 3, 4, 7), end_bias=0.0):
    D, F, E, H, V = sizes
    g = np.random.default_rng(seed)
    state = _captioner(g, D, F, E, H, V, scale=3.0)
    state["out.bias"][[PAD, START]] -= 20.0  # <pad> and <start> are never produced
    state["out.bias"][END] += end_bias
    images = g.standard_normal((N, D))
    return Case(label, {"images": images, "start_id": START, "end_id": END, "max_len": max_len},
                options={"plan": {"sizes": {"D": D, "F": F, "E": E, "H": H, "V": V}, "state": state}})


# Seeds chosen so that, with the reference: the captions differ from image to image, one of them
# never produces <end> within max_len, the others end at different steps, and after <end> the model
# would go on with other words (tests/lessons/test_nb13_image_captioning.py proves these properties).
SAMPLE_SEEDS = {"fixed": 49, "one": 5, "long": 18, "all end": 22}


def _sample_cases(rng):
    return [_sample_case("a fixed model, N=5 images, max_len=6", SAMPLE_SEEDS["fixed"], 5, 6),
            _sample_case("a fixed model, one image (N=1), max_len=4", SAMPLE_SEEDS["one"], 1, 4),
            _sample_case("a fixed model, N=6, V=9, H=5, max_len=8", SAMPLE_SEEDS["long"], 6, 8, (6, 4, 3, 5, 9)),
            _sample_case("a fixed model on which every caption ends, at different steps, N=3, max_len=8",
                         SAMPLE_SEEDS["all end"], 3, 8, end_bias=1.5)]


def _wrong_sample_caption(kind):
    """sample_caption as a learner with the misunderstanding ``kind`` writes it: "never stops" (nor cuts
    at <end>), "with end" or "with start" (in the caption), "zeros" or "no tanh" (the initial state),
    "state not carried" (each step from the image's state)."""
    def sample_caption(model, images, start_id, end_id, max_len):
        import torch

        projected = model.init_state(model.encoder(images))
        h0 = {"zeros": torch.zeros_like(projected), "no tanh": projected}.get(kind, torch.tanh(projected))[None]
        hidden, tokens, steps = h0, torch.full((images.shape[0], 1), start_id, dtype=torch.long), []
        for _ in range(max_len):
            states, new_hidden = model.rnn(model.embedding(tokens), hidden)
            hidden = h0 if kind == "state not carried" else new_hidden
            tokens = model.out(states).argmax(dim=-1)
            steps.append(tokens[:, 0])
            if kind != "never stops" and bool((torch.stack(steps, 1) == end_id).any(1).all()):
                break
        out = []
        for row in torch.stack(steps, 1).tolist():
            if kind == "never stops":
                pass
            elif kind == "with end":
                row = row[:row.index(end_id) + 1] if end_id in row else row
            elif kind == "with start":
                row = [start_id] + (row[:row.index(end_id)] if end_id in row else row)
            else:
                row = row[:row.index(end_id)] if end_id in row else row
            out.append(row)
        return out
    return sample_caption


class SampleCaptionExercise(GreedyOutputExercise):
    """Judges each image's caption, then that sampling stopped once every caption had produced <end>."""

    words = {"row": "image", "output": "caption", "outputs": "captions", "loop": "sampling", "model": "GRU",
             "items": "words"}

    def plan(self, case):
        """The case's fixed model (sizes and weights) with its inputs as ``args``."""
        return self.convention, {**case.options["plan"], "args": case.args}


sample_caption = SampleCaptionExercise(
    "sample_caption", "torch_sample_caption", "sample_caption", _sample_cases, ("tokens", "lengths", "rows"),
    mistakes=[
        Mistake("the caption goes on after <end>: a caption is the words *before* its first <end>; cut it there "
                "(and stop sampling once every caption has finished).",
                implementation=_wrong_sample_caption("never stops")),
        Mistake("leave <end> out of the caption: it marks where the caption stops and is not part of it.",
                implementation=_wrong_sample_caption("with end")),
        Mistake("leave <start> out of the caption: it is the decoder's first input, not a word it produced.",
                implementation=_wrong_sample_caption("with start")),
        Mistake("every caption is the same because the decoder started from zeros: start it from the image, "
                "h_0 = tanh(init_state(encoder(images))), as in the loss.",
                implementation=_wrong_sample_caption("zeros")),
        Mistake("the initial state is init_state(encoder(images)) without the tanh: start from the same state as "
                "in training, h_0 = tanh(init_state(encoder(images))).",
                implementation=_wrong_sample_caption("no tanh")),
        Mistake("every step started from the image's state: feed the GRU the hidden state it returned at the step "
                "before.", implementation=_wrong_sample_caption("state not carried")),
    ],
    hints={"tokens": "no mistake we know of gives these words: at each step feed the GRU the words chosen at the "
                     "step before, shape (N, 1), with the hidden state it returned; see the hints under the "
                     "exercise.",
           "crash": "model.rnn (an nn.GRU, batch_first) takes embedded words (N, 1, E) and a state (1, N, H) and "
                    "returns (states (N, 1, H), state (1, N, H)); model.out(states) is (N, 1, V), and its argmax "
                    "over the last axis, (N, 1), is the next input."},
)


# --- 13.3: GridAttention -------------------------------------------------------------------------

ATTENTION_PARAMS = ("W_f.weight", "W_h.weight", "v.weight")


def _attention_cases(rng):
    cases = []
    for label, (N, L, F, H, A), seed in [("fixed inputs, N=3, L=4 grid positions, F=5, H=4, A=6", (3, 4, 5, 4, 6), 0),
                                         ("random inputs, one image (N=1), L=16 (a 4 x 4 grid)", (1, 16, 3, 2, 4), 1),
                                         ("random inputs, one grid position (L=1)", (2, 1, 3, 3, 2), 2),
                                         ("random inputs, N=5, L=9, F=2, H=1, A=3", (5, 9, 2, 1, 3), 3)]:
        g = np.random.default_rng(1300 + seed)
        state = {"W_f.weight": g.standard_normal((A, F)) / np.sqrt(F), "W_h.weight": g.standard_normal((A, H)),
                 "v.weight": g.standard_normal((1, A)) * 2.0}
        args = {"grid": np.abs(g.standard_normal((N, L, F))), "hidden": np.tanh(g.standard_normal((N, H)) * 2)}
        cases.append(Case(label, args, options={"plan": {
            "init": {"feature_size": F, "hidden_size": H, "attention_size": A}, "state": state,
            "returns": ("context", "weights"), "name": "GridAttention",
            "douts": {"context": g.standard_normal((N, F)), "weights": g.standard_normal((N, L))},
            "grad_wrt": ("grid", "hidden")}}))
    return cases


def _attention_mistake(kind):
    def outputs(case):
        import torch

        from course_utils.lessons.nb13_image_captioning import reference as captioning

        plan = case.options["plan"]
        module = captioning.GridAttention(*plan["init"].values()).to(torch.float64)
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in plan["state"].items()})
        grid, hidden = (torch.from_numpy(np.array(case.args[k])) for k in ("grid", "hidden"))
        with torch.no_grad():
            inner = module.W_f(grid) + module.W_h(hidden)[:, None]
            scores = module.v(inner if kind == "no tanh" else torch.tanh(inner))[..., 0]
            if kind == "sigmoid":
                weights = torch.sigmoid(scores)
            elif kind == "softmax over batch":
                weights = torch.softmax(scores, dim=0)
            elif kind == "uniform":
                weights = torch.full_like(scores, 1.0 / scores.shape[1])
            elif kind == "scores":
                weights = scores
            else:
                weights = torch.softmax(scores, dim=1)
            context = (weights[:, :, None] * grid).sum(dim=1)
            if kind == "scores":
                context = (torch.softmax(scores, dim=1)[:, :, None] * grid).sum(dim=1)
            if kind == "mean context":
                context = (weights[:, :, None] * grid).mean(dim=1)
        return {"context": context.numpy(), "weights": weights.numpy()}
    return outputs


def _softmax_over_batch(self, grid, hidden):  # the weights normalised over the batch, dim=0
    import torch

    weights = torch.softmax(self.v(torch.tanh(self.W_f(grid) + self.W_h(hidden)[:, None]))[..., 0], dim=0)
    return (weights[..., None] * grid).sum(1), weights


def _no_tanh(self, grid, hidden):  # the score without its tanh: linear in W_f grid + W_h hidden
    import torch

    weights = torch.softmax(self.v(self.W_f(grid) + self.W_h(hidden)[:, None])[..., 0], dim=1)
    return (weights[..., None] * grid).sum(1), weights


def _sigmoid(self, grid, hidden):  # a sigmoid of each score in the place of the softmax over the grid
    import torch

    weights = torch.sigmoid(self.v(torch.tanh(self.W_f(grid) + self.W_h(hidden)[:, None]))[..., 0])
    return (weights[..., None] * grid).sum(1), weights


def _mean_context(self, grid, hidden):  # the context is the weighted mean over the grid, not the sum
    import torch

    weights = torch.softmax(self.v(torch.tanh(self.W_f(grid) + self.W_h(hidden)[:, None]))[..., 0], dim=1)
    return (weights[..., None] * grid).mean(1), weights


GridAttention = TorchExercise(
    "GridAttention", "torch_module", "GridAttention", _attention_cases,
    ("context", "weights", *[f"d{p}" for p in ATTENTION_PARAMS], "dgrid", "dhidden"),
    mistakes=[
        Mistake("the weights are normalised over the batch (dim=0): each image's weights must sum to 1 over its "
                "own L grid positions, softmax over dim=1.", _attention_mistake("softmax over batch"),
                implementation=wrong_module("GridAttention", _softmax_over_batch)),
        Mistake("the score has no tanh: score = v . tanh(W_f grid + W_h hidden); without the tanh, v . (W_f g + "
                "W_h h) is linear, and W_h h adds the same number to every position, so the weights would not "
                "depend on the decoder's state.", _attention_mistake("no tanh"),
                implementation=wrong_module("GridAttention", _no_tanh)),
        Mistake("these weights do not sum to 1 over the grid: turn the scores into weights with a softmax over the "
                "L positions, not a sigmoid.", _attention_mistake("sigmoid"),
                implementation=wrong_module("GridAttention", _sigmoid)),
        Mistake("`weights` are the raw scores: return the softmax of the scores over the grid positions, the "
                "weights the context is made of.", _attention_mistake("scores")),
        Mistake("every position got the same weight 1/L: the weights come from the scores, "
                "softmax(v . tanh(W_f grid + W_h hidden)) over the grid.", _attention_mistake("uniform")),
        Mistake("the context is the weighted *mean* over the grid (divided by L): it is the weighted *sum*, "
                "sum_l weights[n, l] grid[n, l], since the weights already sum to 1.",
                _attention_mistake("mean context"),
                implementation=wrong_module("GridAttention", _mean_context)),
    ],
    hints={"weights": "score[n, l] = v . tanh(W_f grid[n, l] + W_h hidden[n]) for every position l, then a softmax "
                      "over l (dim=1); see the hints under the exercise.",
           "context": "the weights are right: context[n] = sum over l of weights[n, l] * grid[n, l], shape (N, F).",
           "weights.shape": "weights should be (N, L): one score per grid position (self.v gives (N, L, 1): drop "
                            "the last axis).",
           "context.shape": "context should be (N, F): sum the weighted grid over the positions, dim=1.",
           "crash": "self.W_f(grid) is (N, L, A) and self.W_h(hidden) is (N, A): add an axis to the second, "
                    "[:, None], so that it broadcasts over the L positions."},
)
GridAttention.hints.update({f"d{p}": "the outputs are right, so autograd's gradients follow: keep to torch "
                                      "operations (no .detach(), .numpy() or in-place changes)."
                             for p in (*ATTENTION_PARAMS, "grid", "hidden")})
