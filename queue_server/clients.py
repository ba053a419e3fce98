"""The connected clients, indexed by (site, role) and by the ticket a phone watches.

A push names its audience ("boards", "counters", a role, one ticket's phone, one kiosk); finding
it by scanning every connection cost 5 % of the server's CPU with 250 connections and 100
requests a second (several pushes per event, each a scan). A client is indexed once its hello
has bound it to a site and role (:meth:`Clients.placed`); its role and site never change after.
"""

from __future__ import annotations

from collections.abc import Iterator

from .jobs import Client


class Clients:
    """A set of clients that also answers "who of this site has this role" in O(answer)."""

    def __init__(self) -> None:
        self._all: set[Client] = set()
        # dicts as ordered sets: pushes go out in connection order, as before
        self._by_role: dict[tuple[str, str], dict[Client, None]] = {}
        self._by_ticket: dict[str, dict[Client, None]] = {}

    def add(self, client: Client) -> None:
        self._all.add(client)

    def placed(self, client: Client) -> None:
        """Index a client whose hello set its site and role (and ticket, for a phone)."""
        if client in self._all:
            self._by_role.setdefault((client.site, client.role), {})[client] = None
            if client.ticket is not None:
                self._by_ticket.setdefault(client.ticket, {})[client] = None

    def discard(self, client: Client) -> None:
        self._all.discard(client)
        for index, key in ((self._by_role, (client.site, client.role)), (self._by_ticket, client.ticket)):
            group = index.get(key) if key is not None else None  # type: ignore[call-overload]
            if group is not None:
                group.pop(client, None)
                if not group:
                    del index[key]  # type: ignore[arg-type]

    def of(self, site: str, *roles: str) -> list[Client]:
        """The placed clients of a site with any of these roles."""
        out: list[Client] = []
        for role in roles:
            out.extend(self._by_role.get((site, role), ()))
        return out

    def watching(self, ticket: str) -> list[Client]:
        """The phones (public role) watching one ticket."""
        return list(self._by_ticket.get(ticket, ()))

    def __iter__(self) -> Iterator[Client]:
        return iter(list(self._all))  # a copy: handlers add and discard while a caller iterates

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, client: object) -> bool:
        return client in self._all
