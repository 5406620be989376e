from ordo.kit.service import main
from ordo.notifier.app import build

main(build)
