"""The keys that start and stop runs: a toggle's paired run, the focused configuration, another seed, a stop."""

from __future__ import annotations

import dataclasses

from rich.markup import escape
from textual import work

from phenomon.config import UsageError
from phenomon.tui import launches
from phenomon.tui.screens.runs import RunsScreen


class LaunchKeys:
    """Mixed into the app: uses its focus (focus_ph, focus_cfg), snapshot, launches and comparison state."""

    def _request(self, cfg, what: str) -> None:
        if self.focus_ph is None:
            self.notify("no phenomenon in focus: select a run first", severity="warning")
            return
        runs = self.snapshot.runs if self.snapshot else ()
        try:
            kind, ref = self.launches.request(self.focus_ph, cfg, runs, start=lambda h: self._launch(h, what))
        except (UsageError, OSError) as e:
            self.notify(escape(f"could not start {what}: {e}"), severity="error")
            return
        if kind == "started":
            self._joining.add(ref)
            self.notify(f"starting {what}")
            if self.follow_group is None and not self.compare_ids:
                self.follow_group = self.focus_ph.group_of(cfg)
        else:
            self.focus_cfg = cfg
            self.notify(escape(f"{what}: {'already starting' if kind == 'pending' else f'run {ref} exists'} — focused"))
        self._bind_screens()

    @work(thread=True, group="launch", exit_on_error=False)
    def _launch(self, h: str, what: str) -> None:
        """Fork and exec off the UI thread: the key that asked is acknowledged before the process exists."""
        try:
            self.launches.start(h)
        except OSError as e:
            self.call_from_thread(self.notify, f"could not start {what}: {e}", severity="error")
        self.call_from_thread(self._bind_screens)

    def action_toggle(self, key: str) -> None:
        t = next((t for t in (self.focus_ph.toggles if self.focus_ph else ()) if t.key == key), None)
        if t is None:
            self.notify(f"{key}: no toggle of {self.focus_ph.name if self.focus_ph else 'this phenomenon'}")
            return
        self._request(launches.flipped(self.focus_ph, self.focus_cfg, t.name), f"{t.name} flipped")

    def action_start(self) -> None:
        if self.focus_cfg is not None:
            self._request(self.focus_cfg, "the focused configuration")

    def action_add_seed(self) -> None:
        if self.focus_cfg is None or not hasattr(self.focus_cfg, "seed"):
            return
        same = [r.manifest.get("seed") or 0 for r in (self.snapshot.runs if self.snapshot else ())
                if (pc := launches.config_of(r)) and dataclasses.replace(pc[1], seed=0)
                == dataclasses.replace(self.focus_cfg, seed=0)]
        seeds = set(same) | {p.spec.seed or 0 for p in self.launches.pending.values()}
        seed = max(seeds | {self.focus_cfg.seed}) + 1
        self._request(dataclasses.replace(self.focus_cfg, seed=seed), f"seed {seed}")

    def action_stop_focused(self) -> None:
        run = self.launches.existing(self.snapshot.runs, launches.chash(self.focus_cfg)) \
            if self.snapshot and self.focus_cfg is not None else None
        if run is None:
            self.notify("the focused configuration has no run to stop")
        else:
            self.post_message(RunsScreen.Stop(run.id))
