"""Profile rules -> a route decision. Sans-IO: plain data in, a decision out."""

from agentwrap.routing.router import RouteDecision, choose_route, needs_summary

__all__ = ["RouteDecision", "choose_route", "needs_summary"]
