"""The three places a setting's text can come from, and which one wins.

An option wins over the environment, the environment over the config file,
and the file over the fallback (the `--demo` defaults); what none of them
gives takes the declared default.  ElectrumX variables this server replaced
are refused wherever they appear, so an old configuration is not half-obeyed.
"""

from electrumx.config.env_file import EnvFileSyntaxError, parse_line
from electrumx.config.errors import ConfigError
from electrumx.config.settings import BY_NAME, OBSOLETE, SETTINGS


def obsolete_error(name: str, where: str) -> ConfigError:
    return ConfigError(name, f"this ElectrumX setting is obsolete; use {OBSOLETE[name]} "
                             f"instead ({where})")


def read_config_file(path: str) -> dict:
    """{NAME: text} from the NAME=VALUE lines of a file (syntax: `env_file`).

    A line that is no NAME=VALUE, or an unknown or obsolete name, is an error
    naming the file and line.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ConfigError("--config", f"cannot read {path!r}: {reason}") from None
    values = {}
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        try:
            assignment = parse_line(line)
        except EnvFileSyntaxError as e:
            raise ConfigError("--config", f"{where}: {e}") from None
        if assignment is None:
            continue
        name, value = assignment
        if name in OBSOLETE:
            raise obsolete_error(name, where)
        if name not in BY_NAME:
            raise ConfigError("--config", f"{where}: unknown setting {name}")
        values[name] = value
    return values


def refuse_obsolete_environment(environ):
    for name in OBSOLETE:
        if name in environ:
            raise obsolete_error(name, "in the environment")


def choose_texts(options, environ, from_file, fallback) -> dict:
    """{NAME: text} of every setting given somewhere, from the source that wins."""
    chosen = {}
    for setting in SETTINGS:
        for source in (options, environ, from_file, fallback):
            if source.get(setting.name) is not None:
                chosen[setting.name] = source[setting.name]
                break
    return chosen
