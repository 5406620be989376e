from ordo.kit.service import main
from ordo.order.app import build

main(build)
