"""API errors: each becomes a JSON body `{"error", "message"}` with its HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def body(self) -> dict:
        return {"error": self.error, "message": self.message}


def bad_request(error: str, message: str) -> ApiError:
    return ApiError(400, error, message)


def not_found(error: str, message: str) -> ApiError:
    return ApiError(404, error, message)
