"""The idle countdown: shown above any page, with a big "continue" before anything is wiped."""

from __future__ import annotations

from collections.abc import Callable

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout

from kiosk.screens.widgets import BigButton, Text, Theme, fill
from queue_server.core.i18n import Messages


def idle_overlay(theme: Theme, messages: Messages, lang: str, seconds: int, on_continue: Callable[[], None]) -> AnchorLayout:
    # Any touch while this is up only means "continue" (the shell swallows it): see KioskShell.build.
    shade = AnchorLayout(anchor_x="center", anchor_y="center")
    fill(shade, (0, 0, 0, 0.6))
    panel = BoxLayout(orientation="vertical", spacing=24, padding=40, size_hint=(None, None),
                      size=(min(1100, 1000 * theme.scale), 560 * min(theme.scale, 1.25)))
    fill(panel, theme.panel, theme.accent, 4)
    panel.add_widget(Text(messages.get("idle.title", lang), lang, theme, "title", halign="center"))
    panel.add_widget(Text(messages.get("idle.body", lang, seconds=seconds), lang, theme, "heading", halign="center"))
    panel.add_widget(BigButton(messages.get("idle.continue", lang), lang, theme, on_continue, primary=True,
                               role="title", height=150, name="idle-continue"))
    shade.add_widget(panel)
    shade.countdown = seconds
    return shade
