"""The ports: one narrow interface per outside system (`protocols`), and `Ports` (`container`),
which picks their implementations from the settings."""
