"""Invitations: surveys the bot starts itself after an interaction in another system.

- `service` — `Invitations`: check a request, apply the fatigue rules, store the invitation and
  open the survey (now, or when the scheduler finds it due), each in one transaction;
- `rules` — the fatigue rules, pure (opt-out, unreachable, suppression list, sampling, cooldown,
  recontact, quiet hours);
- `touchpoints` — the built-in and configured touchpoints and their flows;
- `scheduler` — the background task of `cxbot serve` that sends scheduled invitations;
- `suppression` — the suppression list;
- `serving` — the API and the scheduler in `cxbot serve`;
- `command` — `cxbot invite`;
- `csv_import`, `csv_command` — `cxbot invite --csv FILE`: many invitations from a CSV file.
"""
