from django.conf import settings
from django.core.management.base import BaseCommand

from liveblog import services
from liveblog.scheduler import Scheduler


class Command(BaseCommand):
    help = (
        "Publish the scheduled posts whose time has come (what every server process does about "
        "twice a second). Once, for cron; or with --loop, until stopped. Safe beside running "
        "servers: each post is published once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true",
                            help="keep publishing every --interval seconds until stopped")
        parser.add_argument("--interval", type=float,
                            default=settings.LIVEBLOG_SCHEDULER_SECONDS,
                            help="seconds between runs with --loop "
                                 "(default LIVEBLOG_SCHEDULER_SECONDS)")

    def handle(self, *args, **options) -> None:
        if options["interval"] <= 0:
            self.stderr.write("--interval must be more than 0")
            raise SystemExit(2)
        if not options["loop"]:
            published = services.submissions_publish_due()
            self.stdout.write(f"published {len(published)} scheduled post(s)")
            return
        scheduler = Scheduler(interval=options["interval"])
        self.stdout.write(f"publishing scheduled posts every {options['interval']} s; "
                          "Ctrl-C stops")
        try:
            scheduler.run()
        except KeyboardInterrupt:
            self.stdout.write("stopped")
