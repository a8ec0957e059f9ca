"""The rules a value must follow before it is written into a launch script or a manifest.

Every value that reaches a deployment file is checked against its target's rules, so a name,
repository or image a user typed can neither break the file (a newline that ends a `#` comment
and starts a command, a `$(...)` in a shell line) nor produce a file the target refuses later:

- Model repositories: a Hugging Face repo id (`org/name`, letters, digits, `-`, `_`, `.`, at most
  96 characters per part [1]) or a local path starting with `/`, `./`, `../` or `~`; no control
  characters. Shell lines quote every value with `shlex.quote` in any case.
- Kubernetes object and SkyServe service names: RFC 1035 labels (lower-case letters, digits and
  `-`, starting with a letter, ending alphanumeric, at most 63 characters), the rule for Service
  names [2]; SkyServe service names follow the same pattern [3].
- Container images: the distribution reference grammar [4] (registry[:port]/path[:tag][@digest]).
- SkyPilot accelerator names: letters, digits, `-`, `_`, `.` (e.g. `H100`, `A100-80GB`, `RTX6000-Ada`).

[1] https://huggingface.co/docs/hub/repositories-naming (repo names: alphanumerics, '-', '_', '.', max 96)
[2] https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#rfc-1035-label-names
[3] https://docs.skypilot.co/en/latest/serving/sky-serve.html (service names: lower-case, digits, '-')
[4] https://github.com/distribution/reference/blob/main/reference.go (the grammar in the package comment)
"""

from __future__ import annotations

import re

from planner.errors import InvalidInputError, brief

_HF_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
HF_REPO_RE = re.compile(rf"^(?:{_HF_PART}/)?{_HF_PART}$")
LOCAL_PATH_PREFIXES = ("/", "./", "../", "~")
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
RFC1035_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
ACCELERATOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# distribution/reference: domain (optional), path components, tag, digest
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$")
MAX_IMAGE_CHARS = 255  # distribution/reference NameTotalLengthMax


def _control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def check_model_repo(value: object) -> str:
    """A Hugging Face repo id or a local path, else InvalidInputError saying which forms are accepted."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"model repo must be a non-empty string, got {brief(value)}")
    if _control(value):
        raise InvalidInputError(f"model repo must not contain control characters (newline, tab, ...), "
                                f"got {brief(value)}")
    if value.startswith(LOCAL_PATH_PREFIXES):
        if len(value) > MAX_PATH_CHARS:
            raise InvalidInputError(f"model repo path is {len(value):,} characters, over {MAX_PATH_CHARS:,}")
        return value
    if not HF_REPO_RE.match(value):
        raise InvalidInputError(f"model repo must be a Hugging Face repo id (org/name: letters, digits, '-', '_', "
                                f"'.') or a local path starting with / ./ ../ or ~, got {brief(value)}")
    return value


def check_object_name(value: object, *, what: str = "name") -> str:
    """An RFC 1035 label (Kubernetes Service and SkyServe service names), else InvalidInputError."""
    if not isinstance(value, str) or not RFC1035_RE.match(value):
        raise InvalidInputError(f"{what} must be 1-63 lower-case letters, digits or '-', starting with a letter and "
                                f"ending with a letter or digit (RFC 1035 label), got {brief(value)}")
    return value


def default_object_name(text: str) -> str:
    """An RFC 1035 label derived from `text` (a model repo and engine): lower-cased, '-' for the rest."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"llm-{slug}".rstrip("-")
    return slug[:50].rstrip("-")


def check_image(value: object) -> str:
    """A container image reference (registry/path:tag@digest), else InvalidInputError."""
    if not isinstance(value, str) or len(value) > MAX_IMAGE_CHARS or not _image_ok(value):
        raise InvalidInputError(f"image must be a container image reference such as vllm/vllm-openai:v0.11.0 or "
                                f"ghcr.io/org/name:tag (no spaces or control characters, at most "
                                f"{MAX_IMAGE_CHARS} characters), got {brief(value)}")
    return value


def _image_ok(value: str) -> bool:
    # the first component is a registry only if it has a "." or ":" or is "localhost" (reference grammar)
    first, _, rest = value.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return bool(DOMAIN_RE.match(first) and REPOSITORY_RE.match(rest))
    return bool(REPOSITORY_RE.match(value))


def check_accelerator(value: object) -> str:
    """A SkyPilot accelerator name (H100, A100-80GB, ...), else InvalidInputError."""
    if not isinstance(value, str) or not ACCELERATOR_RE.match(value):
        raise InvalidInputError(f"accelerator must be a SkyPilot accelerator name such as H100 or A100-80GB "
                                f"(letters, digits, '-', '_', '.'), got {brief(value)}")
    return value


def comment_line(text: str) -> str:
    """`text` safe inside one `#` comment line: control characters (a newline would end it) become spaces."""
    return "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)
