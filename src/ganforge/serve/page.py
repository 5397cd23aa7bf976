"""The Gradio page of a served model: its controls come from the model's kind.

Offline by construction: Gradio's own bundled front end, system fonts (no Google Fonts), analytics
off. Every control's function is wrapped so that a :class:`ServeError` (bad input) shows as a message
on the page, and any other failure as a short message too, never a stack trace; the server keeps
serving either way.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable

from ganforge.serve import model as drawing
from ganforge.serve.model import ServedModel, ServeError

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # Gradio refuses larger uploads with its own message
VIDEO_DIR = None  # style-morph videos: the system's temporary folder
# output pictures fill their box, enlarged with their pixels kept sharp (GAN samples are small)
PIXELATED = ".ganforge-picture img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry


class GradioMissing(RuntimeError):
    """Gradio is not installed: serving is an optional extra."""


def import_gradio() -> Any:
    """Gradio, or a GradioMissing that says how to install it."""
    try:
        import gradio
    except ImportError:
        raise GradioMissing("ganforge serve needs Gradio, an optional extra: pip install 'ganforge[serve]'") from None
    return gradio


def shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its failures turned into messages on the page (``gr.Error``)."""
    gr = import_gradio()

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except ServeError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception as err:  # noqa: BLE001 - a page shows a message and keeps serving
            log.exception("serve: %s failed", fn.__name__)
            raise gr.Error(f"could not draw this: {type(err).__name__}: {str(err)[:300]}", print_exception=False) from None

    return wrapper


def _picture(gr: Any, label: str, elem_id: str) -> Any:
    """An output picture, shown enlarged (GAN samples are small) and downloadable as PNG."""
    return gr.Image(label=label, type="numpy", format="png", interactive=False, elem_id=elem_id, height=360,
                    elem_classes=["ganforge-picture"])


def _upload(gr: Any, label: str, elem_id: str) -> Any:
    """An upload that hands over the file as it is: the model's side reads it, so that a file that is
    not a picture gets our message (the output shows the input as the model sees it)."""
    return gr.File(label=label, type="filepath", file_types=["image"], elem_id=elem_id)


def _seed(gr: Any, label: str = "seed", value: int = 0, elem_id: str = "seed") -> Any:
    return gr.Number(label=label, value=value, precision=0, minimum=0, elem_id=elem_id)


def noise_controls(gr: Any, model: ServedModel) -> None:
    """A grid from a seed, and an interpolation strip between two seeds."""
    with gr.Tab("Samples"):
        with gr.Row():
            seed, count = _seed(gr), gr.Slider(1, drawing.MAX_COUNT, value=16, step=1, label="count", elem_id="count")
        button, out = gr.Button("Draw", elem_id="draw"), _picture(gr, "samples", "grid")
        button.click(shown(functools.partial(drawing.noise_grid, model)), [seed, count], out, api_name="grid")
    _interpolation_tab(gr, model)


def _interpolation_tab(gr: Any, model: ServedModel) -> None:
    with gr.Tab("Interpolation"):
        with gr.Row():
            seed_a, seed_b = _seed(gr, "seed A", 0, "seed_a"), _seed(gr, "seed B", 1, "seed_b")
            steps = gr.Slider(2, drawing.MAX_STEPS, value=8, step=1, label="steps", elem_id="steps")
        button, out = gr.Button("Interpolate", elem_id="interpolate"), _picture(gr, "strip", "strip")
        button.click(shown(functools.partial(drawing.interpolation, model)), [seed_a, seed_b, steps], out,
                     api_name="interpolate")


def class_controls(gr: Any, model: ServedModel) -> None:
    """A class picker with truncation, a class sheet, and interpolation."""
    with gr.Tab("Class"):
        with gr.Row():
            name = gr.Dropdown(model.labels, value=model.labels[0], label="class", elem_id="class")
            truncation = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="truncation (0: off)", elem_id="truncation")
            seed, count = _seed(gr), gr.Slider(1, drawing.MAX_COUNT, value=16, step=1, label="count", elem_id="count")
        button, out = gr.Button("Draw", elem_id="draw"), _picture(gr, "samples", "grid")
        button.click(shown(functools.partial(drawing.class_grid, model)), [name, truncation, seed, count], out,
                     api_name="grid")
    with gr.Tab("Class sheet"):
        with gr.Row():
            truncation = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="truncation (0: off)")
            seed, per_class = _seed(gr, elem_id="sheet_seed"), gr.Slider(1, 16, value=8, step=1, label="per class")
        button, out = gr.Button("Draw the sheet", elem_id="sheet"), _picture(gr, "one row per class", "sheet_out")
        button.click(shown(functools.partial(drawing.class_sheet, model)), [truncation, seed, per_class], out,
                     api_name="sheet")
    _interpolation_tab(gr, model)


def translation_controls(gr: Any, model: ServedModel) -> None:
    """An uploaded image and the targets to translate it to."""
    with gr.Row():
        image = _upload(gr, "input image", "input")
        targets = gr.CheckboxGroup(model.labels, value=model.labels[:1], label="targets", elem_id="targets")
    button, out = gr.Button("Translate", elem_id="draw"), _picture(gr, "input, then each target", "grid")
    button.click(shown(functools.partial(drawing.translate, model)), [image, targets], out, api_name="translate")


def reference_controls(gr: Any, model: ServedModel) -> None:
    """A source image and a target domain, in a reference's style or a seed's."""
    with gr.Row():
        source = _upload(gr, "source image", "input")
        reference = _upload(gr, "reference image (optional: else the seed's style)", "reference")
    with gr.Row():
        domain = gr.Dropdown(model.labels, value=model.labels[0], label="target domain", elem_id="domain")
        seed = _seed(gr)
    button, out = gr.Button("Translate", elem_id="draw"), _picture(gr, "source, (reference,) result", "grid")
    button.click(shown(functools.partial(drawing.reference_guided, model)), [source, domain, reference, seed], out,
                 api_name="translate")
    with gr.Accordion("Style morph video: the source through two references' styles", open=False):
        with gr.Row():
            ref_a, ref_b = _upload(gr, "reference A", "reference_a"), _upload(gr, "reference B", "reference_b")
        button, video = gr.Button("Make the video", elem_id="morph"), gr.Video(label="style morph (MP4)", elem_id="video")
        morph = functools.partial(drawing.style_morph, model, out_dir=VIDEO_DIR)
        button.click(shown(morph), [source, domain, ref_a, ref_b], video, api_name="morph")


def story_controls(gr: Any, model: ServedModel) -> None:
    """A story of the run's data (beside its real frames), or the stories of a description file."""
    with gr.Tab("From the data"):
        with gr.Row():
            index, seed = gr.Number(label="story", value=0, precision=0, minimum=0, elem_id="story"), _seed(gr)
        button, out = gr.Button("Draw the story", elem_id="draw"), _picture(gr, "frames, then the real ones", "grid")
        button.click(shown(functools.partial(drawing.data_story, model)), [index, seed], out, api_name="data_story")
    with gr.Tab("Type a story"):
        with gr.Row():
            frames = model.gen.model_config.video_len
            text = gr.Textbox(label=f"{frames} sentences, one per line (one per frame)", lines=frames, elem_id="text")
            seed = _seed(gr, elem_id="text_seed")
        button, out = gr.Button("Draw the story", elem_id="draw_text"), _picture(gr, "the story", "typed")
        button.click(shown(functools.partial(drawing.typed_story, model)), [text, seed], out, api_name="typed_story")
    with gr.Tab("From a file"):
        with gr.Row():
            upload = gr.File(label="descriptions (.npy or .json, as `ganforge story` reads them)", type="filepath",
                             file_types=[".npy", ".json"], elem_id="descriptions")
            seed = _seed(gr, elem_id="file_seed")
        button, out = gr.Button("Draw the stories", elem_id="draw_file"), _picture(gr, "one row per story", "stories")
        button.click(shown(functools.partial(drawing.file_story, model)), [upload, seed], out, api_name="file_story")


CONTROLS: dict[str, Callable[[Any, ServedModel], None]] = {
    "noise": noise_controls, "class": class_controls, "translation": translation_controls,
    "reference": reference_controls, "story": story_controls,
}


def build_page(model: ServedModel) -> Any:
    """The Blocks of ``model``'s page; a ServeError when its kind has no page."""
    gr = import_gradio()
    if model.kind not in CONTROLS:
        raise ServeError(f"ganforge serve draws {', '.join(CONTROLS)} models; a {model.kind} model "
                         f"({model.gen.family}) has no page yet: use its verb on the command line")
    with gr.Blocks(title=f"ganforge: {model.gen.family}", analytics_enabled=False) as page:
        gr.Markdown(f"## {model.gen.family} ({model.kind})\n`{model.source}`, {model.gen.weights} weights, "
                    f"{model.image_size} px. Every picture downloads as PNG from its corner.")
        CONTROLS[model.kind](gr, model)
    page.queue(default_concurrency_limit=1)  # one drawing at a time: two browsers never double memory
    return page


def launch(page: Any, host: str, port: int, block: bool = True) -> Any:
    """Serve ``page`` on host:port with system fonts; returns the app when ``block`` is False."""
    gr = import_gradio()
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, theme=theme, show_error=True,
                quiet=True, inbrowser=False, share=False, footer_links=[], ssr_mode=False,
                max_file_size=MAX_UPLOAD_BYTES, css=PIXELATED)
    return page
