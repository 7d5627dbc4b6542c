"""Capture from real footage: body poses, face performances and rigs found by MediaPipe (offline).

``mediapipe_graphs`` runs the landmark graphs bundled in the mediapipe wheel; ``body`` maps its
33 BlazePose landmarks to cinekit's COCO-18 skeleton; ``face`` reads mouth opening and eye
closure from a face mesh into a ``FacePerformance``; ``rig_auto`` proposes a character's rig.
mediapipe is optional: every entry point says how to install it when it is absent.
"""
