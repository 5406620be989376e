from ordo.kit.service import main
from ordo.risk.app import build

main(build)
