import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from learners.errors import ServiceError
from learners.models import User
from learners.services import user_create


class Command(BaseCommand):
    help = "Create a user and print one JSON object with its ids and API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=User.Role.values)
        parser.add_argument("--classroom", help="classroom name (created if missing)")
        parser.add_argument("--password", help="for page login; without it only the token works")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            info = user_create(
                username=opts["username"], role=opts["role"], classroom=opts["classroom"], password=opts["password"]
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(info))
