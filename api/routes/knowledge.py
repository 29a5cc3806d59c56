"""The tenant's knowledge: ``POST /v1/search`` (retrieval only) and the uploaded documents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile, status

from api.deps import PrincipalDep, SessionDep, StateDep
from api.document_library import Upload, add_documents, delete_document
from api.errors import AUTHENTICATED, documented
from api.schemas import DocumentOut, Page, SearchRequest, SearchResponse, UploadResponse, search_hit
from core.db.queries import documents
from knowledge.retrieval import metadata_filters

router = APIRouter(prefix="/v1", tags=["knowledge"])


@router.post("/search", summary="hybrid retrieval over the tenant's documents", responses=documented(*AUTHENTICATED))
def search(body: SearchRequest, principal: PrincipalDep, state: StateDep) -> SearchResponse:
    labels = body.filters.model_dump() if body.filters else {}
    filters = metadata_filters(tenant=principal.tenant_id, **labels)
    chunks = state.search.search(body.query, top_k=body.top_k, filters=filters)
    return SearchResponse(results=[search_hit(chunk) for chunk in chunks])


@router.post("/documents", status_code=status.HTTP_200_OK, summary="upload files to ingest into the tenant's knowledge",
             responses=documented(*AUTHENTICATED, 415))
def upload_documents(principal: PrincipalDep, state: StateDep,
                     files: Annotated[list[UploadFile], File(description="PDF, HTML, Markdown, DOCX or TXT files")],
                     product: Annotated[str | None, Form(max_length=200)] = None,
                     version: Annotated[str | None, Form(max_length=200)] = None) -> UploadResponse:
    uploads = [Upload(file_name=file.filename or "", data=file.file.read()) for file in files]
    results = add_documents(state, tenant_id=principal.tenant_id, uploads=uploads, product=product, version=version)
    return UploadResponse(results=results)


@router.get("/documents", summary="the tenant's uploaded documents", responses=documented(*AUTHENTICATED))
def list_documents(principal: PrincipalDep, session: SessionDep,
                   limit: Annotated[int, Query(ge=1, le=100)] = 50,
                   offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Page[DocumentOut]:
    rows, total = documents.list_document_sources(session, tenant_id=principal.tenant_id, limit=limit, offset=offset)
    return Page[DocumentOut](items=[DocumentOut.model_validate(row.model_dump()) for row in rows], total=total,
                             limit=limit, offset=offset)


@router.delete("/documents/{source}", status_code=status.HTTP_204_NO_CONTENT,
               summary="delete an uploaded document and its chunks", responses=documented(*AUTHENTICATED, 404))
def remove_document(source: Annotated[str, Path(max_length=255)], principal: PrincipalDep, state: StateDep) -> None:
    delete_document(state, tenant_id=principal.tenant_id, source=source)
