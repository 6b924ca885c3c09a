"""Credentials: written in, never read out. Every answer is metadata only."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import ValidationError

from integrationhub.api.deps import HubDep
from integrationhub.api.errors import ApiError
from integrationhub.errors import CredentialNotFound
from integrationhub.models.credential import CredentialId, CredentialPublic, CredentialPut

router = APIRouter(prefix="/credentials", tags=["credentials"])


@router.put("/{credential_id}", response_model=CredentialPublic)
async def put_credential(
    hub: HubDep, credential_id: CredentialId, body: CredentialPut, response: Response
) -> CredentialPublic:
    """Create or replace a credential; its data is checked against the type's fields."""
    credential_type = hub.registry.credential_type(body.type)
    try:
        credential = credential_type.model_validate(body.data)
    except ValidationError as exc:
        # Name the fields and the rule; never echo the values, which may be secret.
        problems = "; ".join(
            f"{'.'.join(['data', *(str(p) for p in err['loc'])])}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ApiError(422, "credential_invalid", problems) from None
    existed = await _exists(hub, credential_id)
    meta = await hub.credentials.write(credential_id, type=body.type, data=credential.reveal())
    response.status_code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    return meta


async def _exists(hub: HubDep, credential_id: str) -> bool:
    try:
        await hub.credentials.metadata(credential_id)
    except CredentialNotFound:
        return False
    return True


@router.get("", response_model=list[CredentialPublic])
async def list_credentials(hub: HubDep) -> list[CredentialPublic]:
    return await hub.credentials.list()


@router.get("/{credential_id}", response_model=CredentialPublic)
async def get_credential(hub: HubDep, credential_id: CredentialId) -> CredentialPublic:
    return await hub.credentials.metadata(credential_id)


@router.delete("/{credential_id}", status_code=204)
async def delete_credential(hub: HubDep, credential_id: CredentialId) -> None:
    await hub.credentials.delete(credential_id)
