"""Chat formats and the generated Modelfile: training and serving render the same turns.

The expected renderings are written out by hand from the model families' formats (Gemma:
``<start_of_turn>user\\n…<end_of_turn>\\n<start_of_turn>model\\n``; ChatML: ``<|im_start|>…``).
The Jinja side is rendered with jinja2 (as transformers does), the Ollama side with the test's
own Go-template interpreter (:mod:`tests.training.llm.gotemplate`).
"""

from __future__ import annotations

import jinja2
import pytest

from tests.training.llm.gotemplate import render
from tests.training.llm.modelfile import ModelfileSyntaxError, parse_modelfile
from training.llm.chat import FORMATS
from training.llm.export import modelfile

CONVERSATIONS = [
    [{"role": "user", "content": 'Explain {"genes":["BRAF"]}'}],
    [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Explain."},
    ],
    [
        {"role": "user", "content": "One."},
        {"role": "assistant", "content": '{"answer":"a","citations":["x"]}'},
        {"role": "user", "content": "Two."},
    ],
]


def _jinja(format_name: str, messages: list[dict[str, str]]) -> str:
    template = jinja2.Environment(autoescape=False).from_string(FORMATS[format_name].jinja())
    return template.render(messages=messages, bos_token="<bos>", add_generation_prompt=True)


def test_gemma_renders_as_written_by_hand() -> None:
    assert _jinja("gemma", CONVERSATIONS[1]) == (
        "<bos><start_of_turn>user\nAnswer in JSON.<end_of_turn>\n"
        "<start_of_turn>user\nExplain.<end_of_turn>\n<start_of_turn>model\n"
    )
    assert render(FORMATS["gemma"].ollama_template(), CONVERSATIONS[2]) == (
        "<start_of_turn>user\nOne.<end_of_turn>\n"
        '<start_of_turn>model\n{"answer":"a","citations":["x"]}<end_of_turn>\n'
        "<start_of_turn>user\nTwo.<end_of_turn>\n<start_of_turn>model\n"
    )


def test_chatml_renders_as_written_by_hand() -> None:
    assert _jinja("chatml", CONVERSATIONS[1]) == (
        "<|im_start|>system\nAnswer in JSON.<|im_end|>\n"
        "<|im_start|>user\nExplain.<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("format_name", sorted(FORMATS))
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_ollama_template_renders_what_training_rendered(
    format_name: str, messages: list[dict[str, str]]
) -> None:
    """llama.cpp adds the BOS token itself; everything after it must be the same text."""
    trained = _jinja(format_name, messages).removeprefix("<bos>")
    assert render(FORMATS[format_name].ollama_template(), messages) == trained


def test_the_go_interpreter_sees_a_wrong_template() -> None:
    right = FORMATS["gemma"].ollama_template()
    wrong = right.replace('"assistant" }}model', '"assistant" }}assistant')
    assert wrong != right
    assert render(wrong, CONVERSATIONS[2]) != _jinja("gemma", CONVERSATIONS[2]).removeprefix(
        "<bos>"
    )


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_generated_modelfile_parses(format_name: str) -> None:
    chat = FORMATS[format_name]
    text = modelfile(
        chat, gguf_file="m.Q8_0.gguf", num_ctx=4096, seed=7, header={"Output": "Model-generated"}
    )
    parsed = parse_modelfile(text)
    assert parsed.from_ == "./m.Q8_0.gguf"
    assert parsed.template == chat.ollama_template()
    assert parsed.parameters == {
        "temperature": ["0"],
        "seed": ["7"],
        "num_ctx": ["4096"],
        "stop": [chat.turn_end, chat.turn_start],
    }
    assert text.startswith("# Output: Model-generated\n")


@pytest.mark.parametrize(
    "broken",
    [
        'FROM ./m.gguf\nTEMPLATE """{{ .Content }}\n',  # unterminated
        "FROM ./m.gguf\nTEMPERATURE 0\n",  # not an instruction
        'TEMPLATE """x"""\n',  # no FROM
        'FROM ./m.gguf\nPARAMETER stop "<end\n',
    ],
)
def test_the_reader_refuses_a_broken_modelfile(broken: str) -> None:
    with pytest.raises(ModelfileSyntaxError):
        parse_modelfile(broken)
