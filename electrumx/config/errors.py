"""The one error a bad configuration raises."""


class ConfigError(ValueError):
    """A setting with a value the server cannot run with.

    Its text is one line naming the setting, so that start-up can stop with
    exactly that line.
    """

    def __init__(self, setting: str, problem: str):
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}" if setting else problem)
