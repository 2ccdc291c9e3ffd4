import llmfleet


def test_all_is_complete_and_sorted() -> None:
    public = {name for name in dir(llmfleet) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(llmfleet, name)).__name__ == "module"}
    assert set(llmfleet.__all__) == public - modules
    assert llmfleet.__all__ == sorted(llmfleet.__all__)
