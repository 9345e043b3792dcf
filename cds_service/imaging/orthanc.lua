-- OncoCDS: announce every stable study to the imaging service (issue #15).
--
-- Orthanc calls OnStableStudy once a study has received no new instance for "StableAge"
-- seconds (Orthanc Book, "Server-side scripting with Lua", callbacks). The script posts the
-- Study Instance UID (an identifier, no patient detail) to OncoCDS, which enqueues the
-- analysis so that the result is stored before anyone opens the chart.
--
-- Configuration, from Orthanc's environment (never written into this file):
--   ONCOCDS_NOTIFY_URL    e.g. https://oncocds.example.org/api/v1/imaging/pacs-notifications
--   ONCOCDS_NOTIFY_TOKEN  the same value as OncoCDS's ONCOCDS_IMAGING_SERVICE__NOTIFY_TOKEN
-- Load it with "LuaScripts": ["/etc/orthanc/oncocds.lua"] in Orthanc's configuration.

local notifyUrl = os.getenv('ONCOCDS_NOTIFY_URL')
local notifyToken = os.getenv('ONCOCDS_NOTIFY_TOKEN')

function OnStableStudy(studyId, tags, metadata)
  if notifyUrl == nil or notifyUrl == '' or notifyToken == nil or notifyToken == '' then
    print('OncoCDS notification skipped: ONCOCDS_NOTIFY_URL or ONCOCDS_NOTIFY_TOKEN unset')
    return
  end
  local uid = tags['StudyInstanceUID']
  if uid == nil or uid == '' then
    return
  end
  local body = DumpJson({ studyUid = uid, orthancId = studyId }, true)
  local headers = {
    ['Content-Type'] = 'application/json',
    ['Authorization'] = 'Bearer ' .. notifyToken,
  }
  -- HttpPost raises on a transport error or an HTTP error status; keep Orthanc going and
  -- log the study's Orthanc id only (the UID and the token stay out of the log).
  local ok = pcall(HttpPost, notifyUrl, body, headers)
  if not ok then
    print('OncoCDS notification failed for study ' .. studyId)
  end
end
