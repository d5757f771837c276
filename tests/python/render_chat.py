"""Reference renderer of chat templates: jinja2 configured exactly as Hugging Face transformers
configures it in `apply_chat_template` (transformers/utils/chat_template_utils.py), without
transformers itself.

usage: render_chat.py REQUEST.json
REQUEST: {"template", "messages", "tools", "documents", "add_generation_prompt", "bos_token",
"eos_token"}. Writes the rendered bytes (UTF-8) to stdout. When the template calls
raise_exception(msg), writes "RAISED\n" + msg and exits with status 3.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' override of jinja's tojson: no HTML escaping, json.dumps options exposed.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(request["template"])
    try:
        out = template.render(
            messages=request["messages"],
            tools=request.get("tools"),
            documents=request.get("documents"),
            add_generation_prompt=request["add_generation_prompt"],
            bos_token=request["bos_token"],
            eos_token=request["eos_token"],
        )
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:
            sys.stdout.buffer.write(b"RAISED\n" + str(e.message).encode("utf-8"))
            sys.exit(3)
        raise
    sys.stdout.buffer.write(out.encode("utf-8"))


if __name__ == "__main__":
    main()
