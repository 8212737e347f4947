"""Tool-call repair: a stream guard that hands the agent tool calls it can execute.

Modules, one concept each: `validate` (the JSON-schema subset tools use),
`arguments` (raw argument text -> schema-valid JSON), `coerce` (the
schema-guided coercions), `names` (called name -> declared tool), `toolbox`
(the declared tools as a maker of calls found in text), `formats`
(tool calls written into text: block parsers), `markers` (where such blocks
open and end), `embedded` (the incremental scanner that finds them in
streamed text), `textlane` (text runs judged on their escaped bytes) and
`filter` (`ToolRepair`, the `StreamFilter`). See docs/tool-repair.md.

Pure: nothing here does I/O, reads the clock or imports asyncio.
"""

from agentwrap.guards.repair.arguments import ArgsResult, repair_arguments
from agentwrap.guards.repair.embedded import EmbeddedScanner, Extracted
from agentwrap.guards.repair.filter import ToolRepair
from agentwrap.guards.repair.toolbox import EmbeddedCall, Toolbox
from agentwrap.guards.repair.names import NameMatch, NameResolver
from agentwrap.guards.repair.validate import validate

__all__ = [
    "ToolRepair",
    "repair_arguments",
    "ArgsResult",
    "NameResolver",
    "NameMatch",
    "EmbeddedScanner",
    "Extracted",
    "EmbeddedCall",
    "Toolbox",
    "validate",
]
