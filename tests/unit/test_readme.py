"""The README stays true: every setting is documented, the two commands lead, every example is checked."""

import re

from orchestrator.config import Settings, load_settings
from orchestrator.config.sections import _Section
from tests.docs_text import README as FRONT
from tests.docs_text import all_text, page, readme_text

README = all_text()  # the README and docs/: "documented" means in one of them


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
    block = FRONT.split("```sh", 1)[1].split("```", 1)[0]
    assert block.strip().splitlines()[0].startswith("scripts/sandbox")
    assert block.strip().splitlines()[1].startswith("scripts/test")


def sh_blocks() -> list[tuple[str, str]]:
    """Every ```sh block with the HTML comment just before it (its marker), in order."""
    found = []
    for match in re.finditer(r"(?:<!-- ([^\n]*?) -->\n)?```sh\n(.*?)```", readme_text(), re.S):
        found.append((match.group(1) or "", match.group(2)))
    return found


def test_every_shell_example_is_run_by_a_test_or_says_why_not():
    """A README example either runs in tests/e2e/test_readme_examples.py (exit 0 as
    written) or names the reason it cannot run here; none is left unchecked."""
    blocks = sh_blocks()
    assert blocks
    for marker, body in blocks:
        ran = "run as written by tests/e2e/test_readme_examples.py" in marker
        ran = ran or (marker.startswith("readme-adopt-") and "tests/e2e/test_readme_adopt.py" in marker)
        lead = marker.startswith("readme-start")
        exempt = marker.startswith("not run by a test: ")
        installs = body.lstrip().startswith("pipx install .")  # tests/e2e/test_wheel_install.py installs the wheel
        assert ran or lead or exempt or installs, f"README block without a marker: {body[:80]!r}"


def test_the_readme_config_example_is_valid_configuration(tmp_path):
    block = README.split("<!-- readme-config", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "orch.toml"
    path.write_text(block)
    settings = load_settings(path, environ={})
    assert settings.region == "eu-west-1" and settings.safety.max_unhealthy == "10%"


def test_the_readme_says_which_five_settings_the_sandbox_shortens():
    from orchestrator.sandbox.demo import SANDBOX_OVERRIDES

    shortened = [f"{section}.{name}" for section, values in SANDBOX_OVERRIDES.items() for name in values]
    assert len(shortened) == 5
    assert "shortens five settings" in README
    for phrase in ("launch grace 0", "debounce over 3 s", "probe retries spread over\n3 s", "banner timeout 2 s", "connect timeout 1 s"):
        assert phrase.replace("\n", " ") in " ".join(README.split()), phrase


def commands_table() -> str:
    return page("commands.md").split("# Commands\n", 1)[1].split("\n#", 1)[0]


def test_every_command_is_in_the_commands_table():
    """Each registered top-level command (and each subcommand of a group) has a row naming it."""
    import click

    from orchestrator.cli import cli

    table = commands_table()
    rows = [line for line in table.splitlines() if line.startswith("| `orch ")]
    assert rows
    named = " ".join(rows)
    missing = []
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            missing += [f"{name} {sub}" for sub in command.commands if f"`orch {name} {sub}" not in named]
        elif f"`orch {name}" not in named:
            missing.append(name)
    assert not missing, f"README's Commands table lacks a row for orch {', orch '.join(missing)}"


def test_the_commands_table_names_only_real_options():
    """Every --option in a row's command column is an option of that command (or a global one)."""
    import click

    from orchestrator.cli import cli

    for line in (row for row in commands_table().splitlines() if row.startswith("| `orch ")):
        for spelled in re.findall(r"`(orch [^`]+)`", line.split(" | ")[0]):
            words = spelled.split()
            command: click.Command = cli
            for word in words[1:]:
                found = command.get_command(click.Context(command), word) if isinstance(command, click.Group) else None
                if found is not None:
                    command = found
            options = {o for p in command.params for o in getattr(p, "opts", [])}
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", spelled):
                assert option in options, f"{spelled}: {option} is not an option of {command.name}"
