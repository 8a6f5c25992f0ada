"""GET /trainables: what a study can train."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.api.auth import current_principal
from service.api.schemas import TrainablePublic
from trainables import list_trainables

router = APIRouter(
    prefix="/trainables", tags=["trainables"], dependencies=[Depends(current_principal)]
)


@router.get("", response_model=list[TrainablePublic])
def get_trainables() -> list[TrainablePublic]:
    return [TrainablePublic.of(trainable) for trainable in list_trainables()]
