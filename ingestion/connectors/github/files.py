"""Which files of a repository are the user's writing: source and docs, by extension.

Skipped, each with its reason: vendored directories, generated files, binaries (a NUL
byte in the first 8 KB) and files over TWIN_GIT_MAX_FILE_BYTES.
"""

from pathlib import PurePosixPath

LANGUAGES = {
    ".py": "Python",
    ".js": "JavaScript",
    ".mjs": "JavaScript",
    ".jsx": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".go": "Go",
    ".rs": "Rust",
    ".java": "Java",
    ".kt": "Kotlin",
    ".rb": "Ruby",
    ".php": "PHP",
    ".c": "C",
    ".h": "C",
    ".cc": "C++",
    ".cpp": "C++",
    ".hpp": "C++",
    ".cs": "C#",
    ".swift": "Swift",
    ".scala": "Scala",
    ".sh": "Shell",
    ".sql": "SQL",
    ".lua": "Lua",
    ".ex": "Elixir",
    ".hs": "Haskell",
    ".md": "Markdown",
    ".markdown": "Markdown",
    ".rst": "reStructuredText",
    ".txt": "Text",
}
VENDORED_DIRS = {
    "node_modules",
    "vendor",
    "third_party",
    "third-party",
    "bower_components",
    "dist",
    "build",
    "target",
    "venv",
    ".venv",
    "site-packages",
    "__pycache__",
    "Pods",
    ".git",
}
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", "_pb2.py", ".pb.go", ".generated.ts", ".g.dart", ".lock")
GENERATED_NAMES = {"package-lock.json", "yarn.lock", "poetry.lock", "Cargo.lock", "go.sum", "pnpm-lock.yaml"}


def language_of(path: str) -> str:
    return LANGUAGES.get(PurePosixPath(path).suffix.lower(), "")


def skip_reason(path: str, size: int, max_bytes: int) -> str:
    """Why a tracked file is not taken ("" when it is)."""
    parts = PurePosixPath(path).parts
    name = parts[-1]
    if VENDORED_DIRS & set(parts[:-1]):
        return "Vendored code (not yours)."
    if name in GENERATED_NAMES or name.lower().endswith(GENERATED_SUFFIXES) or "migrations" in parts[:-1]:
        return "A generated file."
    if not language_of(path):
        return "Not a source or docs file."
    if size > max_bytes:
        return "Larger than the size limit for one file."
    return ""


def is_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]
