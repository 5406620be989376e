from ordo.kit.service import main
from ordo.signal.app import build

main(build)
