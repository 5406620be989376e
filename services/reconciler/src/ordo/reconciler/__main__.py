from ordo.kit.service import main
from ordo.reconciler.app import build

main(build)
