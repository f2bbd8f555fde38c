"""The plotting helpers of course_utils.plots draw what their docstrings say."""
import matplotlib.pyplot as plt  # conftest.py selects the Agg backend: no windows
import numpy as np
import pytest

from course_utils.plots import plot_hidden_states


def test_plot_hidden_states_draws_an_H_by_T_image_with_labels_and_colorbar():
    T, H = 7, 3
    h = np.tanh(np.random.default_rng(0).standard_normal((T, H)))
    ax = plot_hidden_states(h, title="states")
    (image,) = ax.get_images()
    assert image.get_array().shape == (H, T)  # rows are units, columns are time steps
    np.testing.assert_array_equal(image.get_array(), h.T)
    assert image.get_clim() == (-1.0, 1.0)
    assert ax.get_title() == "states" and "time" in ax.get_xlabel() and "unit" in ax.get_ylabel()
    assert len(ax.figure.axes) == 2  # the heatmap and its colorbar
    assert ax.get_xlim() == (-0.5, T - 0.5)  # pixel t is centred on time step t
    plt.close(ax.figure)


def test_plot_hidden_states_uses_the_given_axes_and_can_skip_the_colorbar():
    fig, ax = plt.subplots()
    out = plot_hidden_states(np.zeros((5, 2)), ax=ax, vmax=0.5, colorbar=False)
    assert out is ax and len(fig.axes) == 1
    assert ax.get_images()[0].get_clim() == (-0.5, 0.5)
    plt.close(fig)


def test_plot_hidden_states_refuses_a_batch():
    with pytest.raises(ValueError, match=r"h\[n\]"):
        plot_hidden_states(np.zeros((2, 5, 3)))


def test_plot_confusion_matrix_shows_counts_and_row_shares_with_labels():
    from course_utils.plots import plot_confusion_matrix

    cm = np.array([[8, 2], [0, 10]])
    ax = plot_confusion_matrix(cm, ["negative", "positive"], title="cm")
    (image,) = ax.get_images()
    np.testing.assert_allclose(image.get_array(), [[0.8, 0.2], [0.0, 1.0]])  # each row's share
    assert [t.get_text() for t in ax.texts] == ["8\n80%", "2\n20%", "0\n0%", "10\n100%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["negative", "positive"]
    assert ax.get_title() == "cm" and "predicted" in ax.get_xlabel() and "true" in ax.get_ylabel()
    plt.close(ax.figure)


def test_plot_confusion_matrix_refuses_a_matrix_of_the_wrong_size():
    from course_utils.plots import plot_confusion_matrix

    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"])
