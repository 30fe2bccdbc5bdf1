"""The README stays true: every setting is documented, the two commands lead."""

from pathlib import Path

from orchestrator.config import Settings, _Section

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names(model: type[_Section] = Settings, prefix: str = "ORCH_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            names += env_names(annotation, f"{prefix}{name.upper()}_")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_in_the_readme():
    missing = [n for n in env_names() if f"`{n}`" not in README]
    assert not missing, f"README's configuration table lacks {missing}"


def test_readme_starts_with_the_two_commands():
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert block.strip().splitlines()[0].startswith("scripts/sandbox")
    assert block.strip().splitlines()[1].startswith("scripts/test")
